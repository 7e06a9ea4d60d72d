/*
 * bench_rss_floor.c - the resident memory any process pays for the libraries
 * the controller links (libcurl and its Debian dependencies, OpenSSL,
 * libwebsockets, json-c, libyaml) once they are initialised as the
 * controller initialises them, with no data at all: the floor under the
 * controller's RSS figures in docs/performance.md.
 *
 *   bench_rss_floor                      prints VmRSS, RssFile, RssAnon (KiB) at each step
 *
 * Linked as the daemons are: with scripts/build-curl.sh's static libcurl when
 * CMake found it, else the system's (then GNUTLS_NO_IMPLICIT_INIT=1 spares the
 * GnuTLS initialisation that Debian's libcurl4 drags in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <yaml.h>

static void rss(const char *when)
{
	char line[256];
	long v[3] = { 0, 0, 0 };
	static const char *const keys[3] = { "VmRSS:", "RssFile:", "RssAnon:" };
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		for (int i = 0; i < 3; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				v[i] = strtol(line + strlen(keys[i]), NULL, 10);
	fclose(f);
	printf("%-28s VmRSS %6ld KiB  RssFile %6ld KiB  RssAnon %6ld KiB\n", when, v[0], v[1], v[2]);
}

int main(void)
{
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	yaml_parser_t yp;
	json_object *o;
	SSL_CTX *sc;
	CURL *h;

	rss("loaded (before main's work)");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	rss("curl initialised");
	sc = SSL_CTX_new(TLS_client_method());
	rss("+ an SSL_CTX");
	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.gid = -1;
	info.uid = -1;
	info.fd_limit_per_thread = 1024; /* as the controller's pool (ch_pool.c) */
	info.pt_serv_buf_size = 32768;
	ctx = lws_create_context(&info);
	rss("+ an lws context");
	o = json_tokener_parse("{\"a\":[1,2,3]}");
	yaml_parser_initialize(&yp);
	rss("+ json-c, libyaml (the floor)");
	yaml_parser_delete(&yp);
	json_object_put(o);
	lws_context_destroy(ctx);
	SSL_CTX_free(sc);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
