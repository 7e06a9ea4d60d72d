/*
 * main.c - podcheckpoint-controller: options, then ctl_run().
 */
#include <signal.h>
#include <stdio.h>

#include "ctl_options.h"
#include "ctl_run.h"

static volatile sig_atomic_t stop;

int main(int argc, char **argv)
{
	static struct ctl_options opts;
	char err[512];

	if (ctl_options_parse(&opts, argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "podcheckpoint-controller: %s\n", err);
		return 2;
	}
	if (opts.help) {
		ctl_options_usage(stdout, "podcheckpoint-controller");
		return 0;
	}
	if (opts.version) {
		printf("podcheckpoint-controller %s\n", PCP_VERSION);
		return 0;
	}
	ctl_install_signals(&stop);
	return ctl_run(&opts, &stop) == 0 ? 0 : 1;
}
