/*
 * bench_helper - the node helper's CPU per checkpoint job, in-process.
 *
 * ours: N jobs through the real runner (node-helper/nh_job.c: 4 slots, the
 *   journal, the kubelet client, lib/artifact, lib/status, kc_client)
 *   against the unit tests' fake API server + kubelet
 *   (tests/unit/node-helper/nh_testpods.c on tests/unit/kc/fake_server.c):
 *   batches of NHP_NPOD CRs (one per pod, one container, leaveRunning),
 *   each must end Succeeded; between batches the journal records are
 *   removed (the helper's prune) and the CRs made afresh (Pending, rv 1).
 * peer: the floor any helper pays: the same HTTP request sequence of one
 *   job (recorded from a first job of ours: method, target, headers, body)
 *   replayed by a plain libcurl loop (one easy handle for the API server,
 *   one for the kubelet, kept alive), nothing else, against the same
 *   server with the same world reset per job.
 * Both include the fake servers' own CPU (same requests, same answers).
 *
 * Prints per phase: RESULT phase=<p> jobs=<n> cpu_ms=<utime+stime>
 * us_per_job=<...> (user, sys) wall_s=<...>, then the ratio ours/peer.
 * Instruction counts: bench/helper.sh runs it under callgrind.
 *
 *   bench_helper [JOBS [ours|peer|both]]     (default 300 both)
 */
#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_server.h"
#include "log.h"
#include "nh_job.h"
#include "nh_journal.h"
#include "nh_testenv.h"
#include "nh_testpods.h"

#define BH_MAX_REQ 32

struct bh_req {
	struct fs_req r;
};

struct bh_seq {
	struct bh_req q[BH_MAX_REQ];
	char url[BH_MAX_REQ][4200];
	int n;
};

static double bh_tv_ms(struct timeval tv)
{
	return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static double bh_cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return bh_tv_ms(ru.ru_utime) + bh_tv_ms(ru.ru_stime);
}

static double bh_sys_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return bh_tv_ms(ru.ru_stime);
}

static double bh_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch: CRs cp-0..cp-(n-1) on pod-0..pod-(n-1), submitted, all must succeed. */
static int bh_batch(struct nhp_fx *f, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++)
		nhp_cr_new(i, i, 60);
	for (int i = 0; i < n; i++)
		if (nhp_submit(f, i) != 0)
			bad++;
	nhp_wait_idle(f, n, 60000);
	for (int i = 0; i < n; i++) {
		if (strcmp(nhp_str(i, "status.phase"), "Succeeded") != 0) {
			fprintf(stderr, "bench_helper: cp-%d ended %s (%s)\n", i,
				nhp_str(i, "status.phase"), nhp_str(i, "status.message"));
			bad++;
		}
		nh_journal_remove(f->e->j, nhp_uid_of(i));
	}
	return bad;
}

/* The first job's requests, as the fake server recorded them. */
static int bh_record(struct nhp_fx *f, struct bh_seq *seq)
{
	int from = fs_count(f->e->srv), to, n;

	if (bh_batch(f, 1) != 0)
		return -1;
	to = fs_count(f->e->srv);
	if (to - from > BH_MAX_REQ || to <= from)
		return -1;
	seq->n = 0;
	for (int i = from; i < to; i++) {
		struct bh_req *b = &seq->q[seq->n];

		if (fs_get(f->e->srv, i, &b->r) != 0)
			return -1;
		n = snprintf(seq->url[seq->n], sizeof(seq->url[0]), "http://127.0.0.1:%d", fs_port(f->e->srv));
		memcpy(seq->url[seq->n++] + n, b->r.target, strlen(b->r.target) + 1);
		printf("REQ %s %s (%zu bytes)\n", b->r.method, b->r.target, b->r.body_len);
	}
	return 0;
}

struct bh_sink {
	char *p;
	size_t len, cap;
};

static size_t bh_write(char *d, size_t sz, size_t nm, void *arg)
{
	struct bh_sink *s = arg;
	size_t n = sz * nm;

	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *p;

		while (cap < s->len + n)
			cap *= 2;
		if (!(p = realloc(s->p, cap)))
			return 0;
		s->p = p;
		s->cap = cap;
	}
	memcpy(s->p + s->len, d, n);
	s->len += n;
	return n;
}

/* The floor: the recorded sequence, N times, on two kept-alive handles. */
static int bh_peer_run(struct bh_seq *seq, int jobs)
{
	CURL *api = curl_easy_init(), *kub = curl_easy_init();
	struct bh_sink sink = { 0 };
	int bad = 0;

	if (!api || !kub)
		return -1;
	for (int j = 0; j < jobs; j++) {
		nhp_cr_new(0, 0, 60);
		for (int i = 0; i < seq->n; i++) {
			struct bh_req *b = &seq->q[i];
			bool kubelet = strncmp(b->r.target, "/checkpoint/", 12) == 0;
			CURL *h = kubelet ? kub : api;
			struct curl_slist *hd = NULL;
			char line[1200];
			long code = 0;

			hd = curl_slist_append(hd, "Accept: application/json");
			hd = curl_slist_append(hd, "Expect:");
			if (b->r.auth[0]) {
				snprintf(line, sizeof(line), "Authorization: %s", b->r.auth);
				hd = curl_slist_append(hd, line);
			}
			if (b->r.content_type[0]) {
				snprintf(line, sizeof(line), "Content-Type: %s", b->r.content_type);
				hd = curl_slist_append(hd, line);
			}
			curl_easy_setopt(h, CURLOPT_URL, seq->url[i]);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
			curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bh_write);
			curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
			curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
			if (strcmp(b->r.method, "GET") == 0) {
				curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
			} else {
				curl_easy_setopt(h, CURLOPT_POSTFIELDS, b->r.body);
				curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)b->r.body_len);
				curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
						 strcmp(b->r.method, "POST") == 0 ? NULL : b->r.method);
			}
			sink.len = 0;
			if (curl_easy_perform(h) != CURLE_OK ||
			    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
			    code < 200 || code > 299)
				bad++;
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
			curl_slist_free_all(hd);
		}
	}
	free(sink.p);
	curl_easy_cleanup(api);
	curl_easy_cleanup(kub);
	return bad;
}

static void bh_result(const char *phase, int jobs, double cpu0, double sys0, double t0)
{
	double cpu = bh_cpu_ms() - cpu0, sys = bh_sys_ms() - sys0, wall = bh_now_s() - t0;

	printf("RESULT phase=%s jobs=%d cpu_ms=%.1f us_per_job=%.1f (user %.1f sys %.1f) wall_s=%.2f\n",
	       phase, jobs, cpu, cpu * 1e3 / jobs, (cpu - sys) * 1e3 / jobs, sys * 1e3 / jobs, wall);
}

int main(int argc, char **argv)
{
	int jobs = argc > 1 ? atoi(argv[1]) : 300;
	const char *which = argc > 2 ? argv[2] : "both";
	bool ours = strcmp(which, "peer") != 0, peer = strcmp(which, "ours") != 0;
	static struct bh_seq seq;
	void *state = NULL;
	struct nhp_fx *f;
	double ours_us = 0, peer_us = 0;
	int bad = 0, done = 0;

	if (jobs < 1) {
		fprintf(stderr, "usage: bench_helper [JOBS [ours|peer|both]]\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	nhp_setup(&state);
	f = state;
	f->e->opt.journal_keep_seconds = 0;
	nht_runner_open(f->e, NULL, NULL);
	if (nh_runner_start(f->e->rn) != 0 || bh_record(f, &seq) != 0) {
		fprintf(stderr, "bench_helper: the first job failed\n");
		return 1;
	}
	if (ours) {
		double cpu0 = bh_cpu_ms(), sys0 = bh_sys_ms(), t0 = bh_now_s();

		while (done < jobs) {
			int n = jobs - done < NHP_NPOD ? jobs - done : NHP_NPOD;

			bad += bh_batch(f, n);
			done += n;
		}
		ours_us = (bh_cpu_ms() - cpu0) * 1e3 / jobs;
		bh_result("ours", jobs, cpu0, sys0, t0);
	}
	if (peer) {
		double cpu0 = bh_cpu_ms(), sys0 = bh_sys_ms(), t0 = bh_now_s();

		bad += bh_peer_run(&seq, jobs);
		peer_us = (bh_cpu_ms() - cpu0) * 1e3 / jobs;
		bh_result("peer", jobs, cpu0, sys0, t0);
	}
	if (ours && peer && peer_us > 0)
		printf("RESULT ours/peer=%.2f\n", ours_us / peer_us);
	for (int i = 0; i < seq.n; i++)
		fs_req_free(&seq.q[i].r);
	nhp_teardown(&state);
	curl_global_cleanup();
	if (bad)
		fprintf(stderr, "bench_helper: %d failures\n", bad);
	return bad ? 1 : 0;
}
