/*
 * bench_artifact - measures the artifact writer and decryptor against the
 * standard tools (driven by bench/run.sh). Every measurement prints one line
 *   RESULT name=<n> bytes=<input bytes> seconds=<wall> maxrss_kib=<peak RSS>
 *
 *   bench_artifact gen DIR MIB COUNT          write COUNT pseudo-random inputs
 *   bench_artifact bundle NAME OUT DIR [CERT]  our bundle of DIR/in-*.img
 *   bench_artifact decrypt NAME IN KEY CERT OUT
 *   bench_artifact run NAME BYTES SHELL-CMD   a peer, run via /bin/sh -c;
 *                                             reports the child's peak RSS
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "art.h"
#include "fsutil.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long self_maxrss(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int cmd_gen(const char *dir, uint64_t mib, uint64_t count)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint64_t *buf = malloc(1u << 20);

	if (!buf)
		return 1;
	for (uint64_t f = 0; f < count; f++) {
		char path[4096];
		int fd;

		(void)snprintf(path, sizeof(path), "%s/in-%llu.img", dir, (unsigned long long)f);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0) {
			perror(path);
			free(buf);
			return 1;
		}
		for (uint64_t m = 0; m < mib; m++) {
			for (size_t i = 0; i < (1u << 20) / 8; i++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				buf[i] = x;
			}
			if (write(fd, buf, 1u << 20) != (ssize_t)(1u << 20)) {
				perror("write");
				close(fd);
				free(buf);
				return 1;
			}
		}
		close(fd);
	}
	free(buf);
	return 0;
}

static void result(const char *name, uint64_t bytes, double secs, long rss)
{
	printf("RESULT name=%s bytes=%llu seconds=%.3f maxrss_kib=%ld\n", name,
	       (unsigned long long)bytes, secs, rss);
	fflush(stdout);
}

static int cmd_bundle(const char *name, const char *out, const char *dir, const char *certpath)
{
	struct art_cert *cert = NULL;
	struct art_writer *w = NULL;
	struct art_result res;
	char msg[512], sha[ART_SHA256_HEX];
	uint64_t total = 0, size;
	double t0;
	int rc = 1;

	if (certpath) {
		enum art_cert_error why;
		char *pem = NULL;
		size_t len = 0;

		if (fsu_read_file(certpath, 1u << 20, &pem, &len) != 0)
			return 1;
		if (art_cert_parse(pem, len, false, time(NULL), &cert, &why, msg, sizeof(msg)) != 0) {
			fprintf(stderr, "%s\n", msg);
			free(pem);
			return 1;
		}
		free(pem);
	}
	t0 = now_s();
	if (art_writer_open(out, cert, &w, msg, sizeof(msg)) != 0)
		goto out;
	if (art_writer_add_bytes(w, "manifest.json", "{}", 2, msg, sizeof(msg)) != 0)
		goto out;
	for (int i = 0;; i++) {
		char src[4096], entry[64];
		struct stat st;

		(void)snprintf(src, sizeof(src), "%s/in-%d.img", dir, i);
		if (stat(src, &st) != 0)
			break;
		(void)snprintf(entry, sizeof(entry), "in-%d.img", i);
		if (art_writer_add_file(w, entry, src, sha, &size, msg, sizeof(msg)) != 0)
			goto out;
		total += size;
	}
	rc = art_writer_commit(w, &res, msg, sizeof(msg));
	w = NULL;
	if (rc)
		goto out;
	result(name, total, now_s() - t0, self_maxrss());
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bundle %s failed: %s\n", name, msg);
	art_writer_abort(w);
	art_cert_free(cert);
	return rc;
}

static int cmd_decrypt(const char *name, const char *in, const char *key, const char *cert,
		       const char *out)
{
	char msg[512];
	double t0 = now_s();
	struct stat st;

	if (art_decrypt(in, key, cert, out, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "decrypt failed: %s\n", msg);
		return 1;
	}
	if (stat(out, &st) != 0)
		return 1;
	result(name, (uint64_t)st.st_size, now_s() - t0, self_maxrss());
	return 0;
}

static int cmd_run(const char *name, uint64_t bytes, const char *shcmd)
{
	struct rusage ru;
	double t0 = now_s();
	int st = 0;
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", shcmd, (char *)NULL);
		_exit(127);
	}
	/* wait4 gives the peak RSS of the child; the shell's children are
	 * folded into RUSAGE_CHILDREN, whose ru_maxrss is the largest one. */
	if (waitpid(pid, &st, 0) != pid)
		return 1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "peer %s failed\n", name);
		return 1;
	}
	if (getrusage(RUSAGE_CHILDREN, &ru) != 0)
		return 1;
	result(name, bytes, now_s() - t0, ru.ru_maxrss);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t a, b;

	if (argc >= 5 && strcmp(argv[1], "gen") == 0 && parse_u64(argv[3], &a) == 0 &&
	    parse_u64(argv[4], &b) == 0)
		return cmd_gen(argv[2], a, b);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "bundle") == 0)
		return cmd_bundle(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	if (argc == 7 && strcmp(argv[1], "decrypt") == 0)
		return cmd_decrypt(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (argc == 5 && strcmp(argv[1], "run") == 0 && parse_u64(argv[3], &a) == 0)
		return cmd_run(argv[2], a, argv[4]);
	fprintf(stderr, "usage: bench_artifact gen DIR MIB COUNT | bundle NAME OUT DIR [CERT] |\n"
			"       decrypt NAME IN KEY CERT OUT | run NAME BYTES SHELL-CMD\n");
	return 2;
}
