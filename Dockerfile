# Image with both daemons: podcheckpoint-controller and podcheckpoint-node-helper.
#
# No registry is reachable on our build machines, so the base is a Debian 12
# root filesystem made locally: scripts/make-base-image.sh builds it with
# debootstrap and `docker import`s it as podcheckpoint-base:bookworm. Elsewhere,
# `--build-arg BASE=debian:bookworm-slim` works the same.
ARG BASE=podcheckpoint-base:bookworm

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      libcurl4-openssl-dev libjson-c-dev libwebsockets-dev libssl-dev libyaml-dev libarchive-dev \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY lib /src/lib
COPY controller /src/controller
COPY node-helper /src/node-helper
COPY tools /src/tools
RUN cmake -S /src -B /build -DPCP_TESTS=OFF -DPCP_BENCH=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /out --strip

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      libcurl4 libjson-c5 libwebsockets17 libssl3 libyaml-0-2 libarchive13 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/bin/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/podcheckpoint-controller"]
