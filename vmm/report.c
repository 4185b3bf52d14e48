/* Milestones and the --report json writer. */
#include <errno.h>
#include <string.h>

#include "kvmini/log.h"
#include "kvmini/report.h"

static const char *const milestone_names[MS_COUNT] = {
	[MS_PROCESS_START] = "process_start",
	[MS_FIRST_VCPU_ENTRY] = "first_vcpu_entry",
	[MS_FIRST_SERIAL_BYTE] = "first_serial_byte",
	[MS_USERSPACE_UP] = "userspace_up",
	[MS_COMMAND_STARTED] = "command_started",
	[MS_COMMAND_DONE] = "command_done",
	[MS_VM_EXIT] = "vm_exit",
};

void report_init(struct report *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	for (unsigned i = 0; i < MS_COUNT; i++)
		r->at[i] = -1;
	r->at[MS_PROCESS_START] = 0;
	r->peak_rss_kib = -1;
}

void report_fini(struct report *r)
{
	pthread_mutex_destroy(&r->lock);
}

void report_mark(struct report *r, enum report_milestone ms)
{
	double now;

	if (!r || ms >= MS_COUNT)
		return;
	now = log_uptime();
	pthread_mutex_lock(&r->lock);
	if (r->at[ms] < 0)
		r->at[ms] = now;
	pthread_mutex_unlock(&r->lock);
}

void report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

int report_write_json(struct report *r, FILE *f)
{
	pthread_mutex_lock(&r->lock);
	fprintf(f, "{\"exit_status\":%d,\"stop_reason\":", r->exit_status);
	report_json_string(f, r->stop_reason ? r->stop_reason : "none");
	if (r->has_command_status)
		fprintf(f, ",\"command_status\":%d", r->command_status);
	else
		fputs(",\"command_status\":null", f);
	fputs(",\"milestones\":{", f);
	for (unsigned i = 0; i < MS_COUNT; i++) {
		fprintf(f, "%s", i ? "," : "");
		report_json_string(f, milestone_names[i]);
		if (r->at[i] >= 0)
			fprintf(f, ":%.6f", r->at[i]);
		else
			fputs(":null", f);
	}
	fputs("},\"peak_rss_kib\":", f);
	if (r->peak_rss_kib >= 0)
		fprintf(f, "%ld", r->peak_rss_kib);
	else
		fputs("null", f);
	fputs("}\n", f);
	pthread_mutex_unlock(&r->lock);
	return fflush(f) || ferror(f) ? -EIO : 0;
}
