/* The JSON writer and the --report object: escapes, UTF-8 passthrough,
 * null for milestones not reached, first mark wins. python3's json
 * module, when present, parses the object as a second opinion. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fuse.h>

#include "kvmini/log.h"
#include "kvmini/report.h"
#include "kvmini/virtio_fs.h"
#include "../check_main.h"

/* Runs @fn into a memory stream; returns the malloc'd text. */
static char *capture_string(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(f);
	report_json_string(f, s);
	fclose(f);
	return out;
}

/* @r as report_write_json writes it; the malloc'd text. */
static char *report_text(struct report *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(report_write_json(r, f), 0);
	fclose(f);
	return out;
}

START_TEST(escapes)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" },
		{ "nl\ncr\rtab\t", "\"nl\\ncr\\rtab\\t\"" },
		{ "\x01\x1f\x7f\b\f", "\"\\u0001\\u001f\\u007f\\b\\f\"" },
		{ "h\xc3\xa9llo \xe2\x9c\x93", "\"h\xc3\xa9llo \xe2\x9c\x93\"" }, /* UTF-8 as is */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = capture_string(cases[i].in);

		ck_assert_str_eq(got, cases[i].want);
		free(got);
	}
}
END_TEST

START_TEST(report_object)
{
	struct report r;
	char *out;

	log_init();
	report_init(&r);
	r.at[MS_FIRST_VCPU_ENTRY] = 0.25;
	report_mark(&r, MS_FIRST_VCPU_ENTRY);   /* already set: kept */
	report_mark(NULL, MS_VM_EXIT);          /* no report: nothing */
	r.at[MS_VM_EXIT] = 1.5;
	r.exit_status = 42;
	r.stop_reason = "po\"weroff";
	r.has_command_status = true;
	r.command_status = 42;
	r.peak_rss_kib = 1234;
	out = report_text(&r);
	ck_assert_str_eq(out,
		"{\"exit_status\":42,\"stop_reason\":\"po\\\"weroff\",\"command_status\":42,"
		"\"milestones\":{\"process_start\":0.000000,\"first_vcpu_entry\":0.250000,"
		"\"first_serial_byte\":null,\"userspace_up\":null,\"command_started\":null,"
		"\"command_done\":null,\"vm_exit\":1.500000},\"peak_rss_kib\":1234,"
		"\"before_main_s\":null,\"to_first_guest_instruction_s\":null,\"rss_kib\":null,"
		"\"guest_resident_kib\":null,\"guest_hugetlb_kib\":null,\"vmm_overhead_kib\":null,"
		"\"kvm_exits\":null,\"kvm_stats\":null,\"shares\":[]}\n");
	if (system("command -v python3 >/dev/null 2>&1") == 0) {
		char cmd[2048];

		snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' | python3 -c 'import json,sys; "
			 "d=json.load(sys.stdin); assert d[\"milestones\"][\"userspace_up\"] is None'",
			 out);
		ck_assert_int_eq(system(cmd), 0);
	}
	free(out);
	report_mark(&r, MS_USERSPACE_UP);
	ck_assert(r.at[MS_USERSPACE_UP] >= 0);
	report_fini(&r);
}
END_TEST

/* The boot profile: exits broken down by the statistics that count
 * them (the rest is "other"), every statistic listed, memory apart from
 * guest RAM, and the time to the first guest instruction. */
START_TEST(profile)
{
	static const struct report_stat stats[] = {
		{ "exits", 1000 }, { "io_exits", 300 }, { "mmio_exits", 20 }, { "halt_exits", 5 },
		{ "pf_taken", 100 }, { "irq_exits", 70 }, { "pages_2m", 59 },
	};
	struct report r;
	char *out;

	report_init(&r);
	r.at[MS_FIRST_VCPU_ENTRY] = 0.125;
	r.before_main_s = 0.5;
	r.kvm_stats = stats;
	r.nr_kvm_stats = sizeof(stats) / sizeof(stats[0]);
	r.rss_kib = 100000;
	r.guest_resident_kib = 80000;
	r.guest_hugetlb_kib = 0;
	out = report_text(&r);
	ck_assert_ptr_nonnull(strstr(out, ",\"before_main_s\":0.500000,"
		"\"to_first_guest_instruction_s\":0.625000,\"rss_kib\":100000,"
		"\"guest_resident_kib\":80000,\"guest_hugetlb_kib\":0,\"vmm_overhead_kib\":20000,"
		"\"kvm_exits\":{\"total\":1000,\"io\":300,\"mmio\":20,\"halt\":5,"
		"\"nested_page_fault\":100,\"host_interrupt\":70,\"irq_window\":0,"
		"\"nmi_window\":0,\"signal\":0,\"request_irq\":0,\"other\":505},"
		"\"kvm_stats\":{\"exits\":1000,\"io_exits\":300,\"mmio_exits\":20,"
		"\"halt_exits\":5,\"pf_taken\":100,\"irq_exits\":70,\"pages_2m\":59},"
		"\"shares\":[]}\n"));
	free(out);
	report_fini(&r);

	/* This process's age: positive, and not absurd for a unit test. */
	ck_assert(report_process_age() > 0);
	ck_assert(report_process_age() < 3600);
}
END_TEST

/* Each share's counts: the requests by FUSE name, only those seen; an
 * opcode the server has no name for by number. */
START_TEST(shares)
{
	static struct virtio_fs_counts c[2] = {
		{ .tag = "src", .notifications = 7, .chains = 9, .interrupts = 8 },
		{ .tag = "o\"ut" },
	};
	struct report r;
	char *out;

	c[0].ops[FUSE_INIT] = 1;
	c[0].ops[FUSE_LOOKUP] = 5;
	c[0].ops[FUSE_READ] = 3;
	c[0].ops[60] = 2;
	c[0].ops[FUSE_SERVER_NR_OPCODES - 1] = 4;
	report_init(&r);
	r.shares = c;
	r.nr_shares = 2;
	out = report_text(&r);
	ck_assert_ptr_nonnull(strstr(out, ",\"shares\":[{\"tag\":\"src\",\"notifications\":7,"
		"\"requests\":9,\"interrupts\":8,\"ops\":{\"LOOKUP\":5,\"READ\":3,\"INIT\":1,"
		"\"opcode_60\":2,\"opcode_63_or_above\":4}},{\"tag\":\"o\\\"ut\",\"notifications\":0,"
		"\"requests\":0,\"interrupts\":0,\"ops\":{}}]}\n"));
	free(out);
	report_fini(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("json");

	tcase_add_test(tc, escapes);
	tcase_add_test(tc, report_object);
	tcase_add_test(tc, profile);
	tcase_add_test(tc, shares);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
