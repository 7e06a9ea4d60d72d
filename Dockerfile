# Image with both daemons, podcheckpoint-controller and podcheckpoint-node-helper,
# and the podcheckpoint-decrypt tool.
#
# No registry is reachable on our build machines, so the base is a Debian 12
# root filesystem made locally: scripts/make-base-image.sh builds it with
# debootstrap and `docker import`s it as podcheckpoint-base:bookworm. Elsewhere,
# `--build-arg BASE=debian:bookworm-slim` works the same.
#
# The runtime stage is FROM scratch: the three binaries, the shared libraries they
# load (collected with ldd by scripts/image/make-rootfs.sh), CA certificates and
# passwd lines for root and 65532. No shell, no package manager.
ARG BASE=podcheckpoint-base:bookworm

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config ca-certificates \
      libjson-c-dev libwebsockets-dev libssl-dev libyaml-dev libarchive-dev \
      dpkg-dev autoconf automake libtool zlib1g-dev
# libcurl: Debian's curl source (its security patches included), built static
# with HTTP(S) over OpenSSL only; Debian's libcurl4 would load 27 more libraries
# the daemons never use (3.6 MiB of each process's memory, docs/performance.md).
COPY scripts/build-curl.sh /src/scripts/
RUN /src/scripts/build-curl.sh /opt/curl && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY lib /src/lib
COPY controller /src/controller
COPY node-helper /src/node-helper
COPY tools /src/tools
RUN cmake -S /src -B /build -DPCP_TESTS=OFF -DPCP_BENCH=OFF -DCMAKE_BUILD_TYPE=Release -DPCP_CURL_PREFIX=/opt/curl \
 && cmake --build /build -j"$(nproc)" --target podcheckpoint-controller podcheckpoint-node-helper podcheckpoint-decrypt \
 && mkdir -p /out/bin \
 && cp /build/controller/podcheckpoint-controller /build/node-helper/podcheckpoint-node-helper /build/tools/podcheckpoint-decrypt /out/bin/
COPY scripts/image /src/scripts/image
RUN /src/scripts/image/make-rootfs.sh /rootfs /out/bin/podcheckpoint-controller /out/bin/podcheckpoint-node-helper /out/bin/podcheckpoint-decrypt

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/podcheckpoint-controller"]
