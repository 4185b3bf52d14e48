/* Milestones and the --report json writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/log.h"
#include "kvmini/fuse_parse.h"
#include "kvmini/report.h"
#include "kvmini/virtio_fs.h"

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
	r->before_main_s = -1;
	r->rss_kib = r->guest_resident_kib = r->guest_hugetlb_kib = -1;
}

double report_process_age(void)
{
	char buf[1024];
	unsigned long long start;
	struct timespec now;
	const char *p;
	ssize_t n;
	long hz = sysconf(_SC_CLK_TCK);
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || hz <= 0)
		return -1;
	buf[n] = '\0';
	/* Field 22, starttime; the command name (field 2) may hold spaces
	 * and parentheses, so count from its closing one. */
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1 ||
	    clock_gettime(CLOCK_BOOTTIME, &now) < 0)
		return -1;
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9 - (double)start / (double)hz;
}

/* The classes of KVM's "exits" counter that its other statistics count
 * (each exit at most once); "other" is the rest: MSR and CPUID accesses,
 * port I/O and MMIO KVM emulates itself (PIT, PIC, I/O APIC: these
 * nested page faults are not in pf_taken), control register writes... */
const struct report_exit_class report_exit_classes[] = {
	{ "io", "io_exits" },                 /* port I/O handled by kvmini */
	{ "mmio", "mmio_exits" },             /* MMIO handled by kvmini */
	{ "halt", "halt_exits" },             /* HLT */
	{ "nested_page_fault", "pf_taken" },  /* EPT/NPT faults */
	{ "host_interrupt", "irq_exits" },
	{ "irq_window", "irq_window_exits" },
	{ "nmi_window", "nmi_window_exits" },
	{ "signal", "signal_exits" },
	{ "request_irq", "request_irq_exits" },
};
const unsigned report_nr_exit_classes = sizeof(report_exit_classes) / sizeof(report_exit_classes[0]);

static bool stat_value(const struct report *r, const char *name, uint64_t *v)
{
	for (unsigned i = 0; i < r->nr_kvm_stats; i++) {
		if (!strcmp(r->kvm_stats[i].name, name)) {
			*v = r->kvm_stats[i].value;
			return true;
		}
	}
	return false;
}

static void write_kvm(const struct report *r, FILE *f)
{
	uint64_t total, v, sum = 0;

	if (!r->nr_kvm_stats || !stat_value(r, "exits", &total)) {
		fputs(",\"kvm_exits\":null,\"kvm_stats\":null", f);
		return;
	}
	fprintf(f, ",\"kvm_exits\":{\"total\":%llu", (unsigned long long)total);
	for (unsigned i = 0; i < report_nr_exit_classes; i++) {
		v = 0;
		stat_value(r, report_exit_classes[i].stat, &v);
		sum += v;
		fprintf(f, ",\"%s\":%llu", report_exit_classes[i].key, (unsigned long long)v);
	}
	fprintf(f, ",\"other\":%llu}", (unsigned long long)(total > sum ? total - sum : 0));
	fputs(",\"kvm_stats\":{", f);
	for (unsigned i = 0; i < r->nr_kvm_stats; i++) {
		fputs(i ? "," : "", f);
		report_json_string(f, r->kvm_stats[i].name);
		fprintf(f, ":%llu", (unsigned long long)r->kvm_stats[i].value);
	}
	fputc('}', f);
}

/* Seconds (6 decimals) or KiB (whole), null when negative (unknown). */
static void write_seconds(FILE *f, const char *key, double v)
{
	fprintf(f, ",\"%s\":", key);
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%.6f", v);
}

static void write_kib(FILE *f, const char *key, long v)
{
	fprintf(f, ",\"%s\":", key);
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%ld", v);
}

/* "shares": per virtio-fs device, how requests came and went and how
 * many of each FUSE opcode (those served at least once). */
static void write_shares(const struct report *r, FILE *f)
{
	fputs(",\"shares\":[", f);
	for (unsigned i = 0; i < r->nr_shares; i++) {
		const struct virtio_fs_counts *c = &r->shares[i];
		bool first = true;

		fputs(i ? ",{\"tag\":" : "{\"tag\":", f);
		report_json_string(f, c->tag);
		fprintf(f, ",\"notifications\":%llu,\"requests\":%llu,\"interrupts\":%llu,\"ops\":{",
			(unsigned long long)c->notifications, (unsigned long long)c->chains,
			(unsigned long long)c->interrupts);
		for (unsigned op = 0; op < FUSE_SERVER_NR_OPCODES; op++) {
			const char *name = fuse_opcode_name(op);

			if (!c->ops[op])
				continue;
			fputs(first ? "" : ",", f);
			first = false;
			if (name && op < FUSE_SERVER_NR_OPCODES - 1)
				report_json_string(f, name);
			else
				fprintf(f, "\"opcode_%u%s\"", op, op == FUSE_SERVER_NR_OPCODES - 1 ? "_or_above" : "");
			fprintf(f, ":%llu", (unsigned long long)c->ops[op]);
		}
		fputs("}}", f);
	}
	fputc(']', f);
}

static void write_profile(const struct report *r, FILE *f)
{
	double first = r->at[MS_FIRST_VCPU_ENTRY];
	long overhead = -1;

	write_seconds(f, "before_main_s", r->before_main_s);
	write_seconds(f, "to_first_guest_instruction_s",
		      first >= 0 && r->before_main_s >= 0 ? first + r->before_main_s : -1);
	write_kib(f, "rss_kib", r->rss_kib);
	write_kib(f, "guest_resident_kib", r->guest_resident_kib);
	write_kib(f, "guest_hugetlb_kib", r->guest_hugetlb_kib);
	if (r->rss_kib >= 0 && r->guest_resident_kib >= 0)
		overhead = r->rss_kib > r->guest_resident_kib ? r->rss_kib - r->guest_resident_kib : 0;
	write_kib(f, "vmm_overhead_kib", overhead);
	write_kvm(r, f);
	write_shares(r, f);
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
	write_profile(r, f);
	fputs("}\n", f);
	pthread_mutex_unlock(&r->lock);
	return fflush(f) || ferror(f) ? -EIO : 0;
}
