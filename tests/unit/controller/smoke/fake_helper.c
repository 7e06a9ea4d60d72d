/* Fake node helper for the manual smoke run: RUNNING twice, then FAILED/KubeletError; delete-artifact SUCCEEDED. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <signal.h>
#include "ch.h"
static volatile sig_atomic_t stop;
static int n;
static int auth(void *a, const char *tok) { (void)a; fprintf(stderr, "auth token_len=%zu\n", strlen(tok)); return 0; }
static int on_job(void *a, const struct ch_job *j, struct ch_state *now) {
	(void)a; n++;
	fprintf(stderr, "job op=%d uid=%s pod=%s node=%s ncont=%zu c0=%s timeout=%d n=%d\n", j->op, j->uid, j->pod, j->node, j->ncontainers, j->ncontainers ? j->containers[0] : "", j->timeout_seconds, n);
	memset(now, 0, sizeof(*now));
	snprintf(now->uid, sizeof(now->uid), "%s", j->uid);
	now->state = j->op == CH_OP_DELETE_ARTIFACT ? CH_SUCCEEDED : (n < 3 ? CH_RUNNING : CH_FAILED);
	if (now->state == CH_FAILED) { snprintf(now->reason, sizeof(now->reason), "KubeletError"); snprintf(now->message, sizeof(now->message), "The kubelet said no."); }
	return 0;
}
static void h(int s) { (void)s; stop = 1; }
int main(void) {
	char *cert, *key, fp[65]; struct ch_server *srv;
	signal(SIGTERM, h);
	if (ch_make_self_signed("127.0.0.1", 1, &cert, &key, fp)) return 1;
	printf("%s\n", fp); fflush(stdout);
	struct ch_server_opts o = { .bind_address = "127.0.0.1", .port = (int)strtol(getenv("HELPER_PORT") ? getenv("HELPER_PORT") : "28543", NULL, 10), .cert_pem = cert, .key_pem = key, .ops = { auth, on_job, NULL } };
	if (ch_server_new(&o, &srv)) return 2;
	ch_server_run(srv, &stop);
	ch_server_free(srv);
	return 0;
}
