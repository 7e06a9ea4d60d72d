/* libFuzzer driver: channel messages (job and state), as a node helper or a
 * controller would receive them from the WebSocket. A decoded message must
 * encode again and decode to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ch_job job, again;
	struct ch_state st, st2;
	char err[256], *text = NULL;

	memset(&job, 0, sizeof(job));
	memset(&again, 0, sizeof(again));
	if (ch_job_decode((const char *)data, size, &job, err, sizeof(err)) == 0) {
		if (ch_job_encode(&job, &text) != 0)
			__builtin_trap();
		if (ch_job_decode(text, strlen(text), &again, err, sizeof(err)) != 0 ||
		    strcmp(job.uid, again.uid) != 0 || strcmp(job.name, again.name) != 0 ||
		    job.op != again.op)
			__builtin_trap();
		free(text);
		text = NULL;
	}
	ch_job_cleanup(&job);
	ch_job_cleanup(&again);

	if (ch_state_decode((const char *)data, size, &st, err, sizeof(err)) == 0) {
		if (ch_state_encode(&st, &text) != 0)
			__builtin_trap();
		if (ch_state_decode(text, strlen(text), &st2, err, sizeof(err)) != 0 ||
		    st.state != st2.state || st.bytes != st2.bytes || strcmp(st.uid, st2.uid) != 0)
			__builtin_trap();
		free(text);
	}
	return 0;
}
