/* CLI parsing: sizes, options, errors that name the bad argument. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/config.h"
#include "kvmini/init_conf.h"
#include "../check_main.h"

static int parse(struct kv_config *cfg, struct kv_err *e, const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"kvmini";
	while (*args && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	memset(e, 0, sizeof(*e));
	return config_parse(argc, argv, cfg, e);
}

START_TEST(sizes)
{
	uint64_t v;

	ck_assert_int_eq(config_parse_size("512M", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(config_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(config_parse_size("2GiB", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(config_parse_size("64k", &v), 0);
	ck_assert_uint_eq(v, 64ULL << 10);
	ck_assert_int_eq(config_parse_size("1048576", &v), 0);
	ck_assert_uint_eq(v, 1048576);
	ck_assert_int_ne(config_parse_size("0", &v), 0);
	ck_assert_int_ne(config_parse_size("0M", &v), 0);
	ck_assert_int_ne(config_parse_size("", &v), 0);
	ck_assert_int_ne(config_parse_size("-1G", &v), 0);
	ck_assert_int_ne(config_parse_size("12X", &v), 0);
	ck_assert_int_ne(config_parse_size("1.5G", &v), 0);
	ck_assert_int_ne(config_parse_size("G", &v), 0);
	ck_assert_int_ne(config_parse_size("99999999999999999999", &v), 0);
	ck_assert_int_ne(config_parse_size("99999999999T", &v), 0);
}
END_TEST

START_TEST(run_defaults_and_values)
{
	struct kv_config c;
	struct kv_err e;
	const char *ok[] = { "run", "--kernel", "k", "--initrd", "i", "--memory", "1G",
			     "--cpus", "4", "--cmdline", "quiet", "--boot", "pvh", NULL };
	const char *min[] = { "run", "--kernel", "k", NULL };

	ck_assert_int_eq(parse(&c, &e, min), 0);
	ck_assert_int_eq(c.action, ACTION_RUN);
	ck_assert_uint_eq(c.memory, CONFIG_DEFAULT_MEMORY);
	ck_assert_uint_eq(c.cpus, 1);
	ck_assert_int_eq(c.boot, BOOT_AUTO);
	ck_assert_ptr_null(c.initrd);

	ck_assert_int_eq(parse(&c, &e, ok), 0);
	ck_assert_str_eq(c.kernel, "k");
	ck_assert_str_eq(c.initrd, "i");
	ck_assert_uint_eq(c.memory, 1ULL << 30);
	ck_assert_uint_eq(c.cpus, 4);
	ck_assert_str_eq(c.cmdline, "quiet");
	ck_assert_int_eq(c.boot, BOOT_PVH);
	ck_assert(!c.mem_hugetlb && !c.mem_prefault);
}
END_TEST

START_TEST(memory_options)
{
	struct kv_config c;
	struct kv_err e;
	const char *huge[] = { "run", "--kernel", "k", "--memory", "1G,hugetlb", NULL };
	const char *both[] = { "run", "--kernel", "k", "--memory", "64M,prefault,hugetlb", NULL };
	const char *pre[] = { "run", "--kernel", "k", "--memory", "17M,prefault", NULL };

	ck_assert_int_eq(parse(&c, &e, huge), 0);
	ck_assert_uint_eq(c.memory, 1ULL << 30);
	ck_assert(c.mem_hugetlb && !c.mem_prefault);
	ck_assert_int_eq(parse(&c, &e, both), 0);
	ck_assert_uint_eq(c.memory, 64ULL << 20);
	ck_assert(c.mem_hugetlb && c.mem_prefault);
	/* prefault alone needs no 2 MiB multiple */
	ck_assert_int_eq(parse(&c, &e, pre), 0);
	ck_assert_uint_eq(c.memory, 17ULL << 20);
	ck_assert(!c.mem_hugetlb && c.mem_prefault);
}
END_TEST

struct bad_case {
	const char *args[10];
	const char *needle; /* the error must mention this */
};

static const struct bad_case bad_cases[] = {
	{ { NULL }, "no command" },
	{ { "frobnicate", NULL }, "unknown command 'frobnicate'" },
	{ { "run", NULL }, "--kernel" },
	{ { "run", "--kernel", "k", "--bogus", NULL }, "unknown option '--bogus'" },
	{ { "run", "--kernel", NULL }, "needs a value" },
	{ { "run", "--kernel", "k", "--memory", "0", NULL }, "--memory '0'" },
	{ { "run", "--kernel", "k", "--memory", "lots", NULL }, "--memory 'lots'" },
	{ { "run", "--kernel", "k", "--memory", "1M", NULL }, "too small" },
	{ { "run", "--kernel", "k", "--memory", "512M,huge", NULL }, "unknown option 'huge'" },
	{ { "run", "--kernel", "k", "--memory", "512M,", NULL }, "unknown option ''" },
	{ { "run", "--kernel", "k", "--memory", ",hugetlb", NULL }, "not a size" },
	{ { "run", "--kernel", "k", "--memory", "17M,hugetlb", NULL }, "multiple of 2M" },
	{ { "run", "--kernel", "k", "--cpus", "0", NULL }, "--cpus '0'" },
	{ { "run", "--kernel", "k", "--cpus", "256", NULL }, "--cpus '256'" },
	{ { "run", "--kernel", "k", "--cpus", "two", NULL }, "--cpus 'two'" },
	{ { "run", "--kernel", "k", "--boot", "uefi", NULL }, "--boot 'uefi'" },
	{ { "run", "--kernel", "k", "extra", NULL }, "unexpected argument 'extra'" },
	{ { "run", "--kernel", "k", "--exec", "true", NULL }, "--exec needs a root for the command: root= on --cmdline" },
	{ { "run", "--kernel", "k", "--exec", "true", "--cmdline", "quiet", NULL }, "or --initrd" },
	{ { "run", "--kernel", "k", "--rootfs", "/", "--initrd", "i", NULL }, "--rootfs / boots with kvmini's own initramfs and init: drop --initrd" },
	{ { "run", "--kernel", "k", "--rootfs", "/", "--cmdline", "root=/dev/vda", NULL }, "drop root=/dev/vda" },
	{ { "run", "--kernel", "k", "--rootfs", "/,rx", NULL }, "--rootfs '/,rx': expected DIR[,rw]" },
	{ { "run", "--kernel", "k", "--rootfs", ",rw", NULL }, "give the host folder" },
	{ { "run", "--kernel", "k", "--rootfs", "/", "--share", "/tmp:kvmini-root", NULL }, "--rootfs: --share /: tag 'kvmini-root' is already /tmp's" },
	{ { "run", "--kernel", "k", "--initrd", "i", "--cmdline", "root=/dev/vda", "--overlay", "/etc", NULL },
	  "--overlay works only with kvmini's own initramfs" },
	{ { "run", "--kernel", "k", "--modules", "/m", NULL }, "--modules needs root= on --cmdline" },
	{ { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--overlay", "/tmp/x", NULL }, "overlay '/tmp/x'" },
	{ { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--workdir", "rel", NULL }, "--workdir 'rel'" },
	{ { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--modules", "", NULL }, "--modules: the value is empty" },
	{ { "run", "--kernel", "k", "--initrd", "i", "--exec", "", NULL }, "--exec: the command is empty" },
	{ { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--exec", "true", "--exec-boot", "sys", NULL },
	  "--exec-boot 'sys': expected auto, direct or system" },
	{ { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--exec-boot", "system", NULL },
	  "--exec-boot says how --exec's command runs: give --exec CMD" },
	{ { "run", "--kernel", "k", "--initrd", "i", "--exec", "true", "--exec-boot", "direct", NULL },
	  "--exec-boot works only with kvmini's own initramfs" },
	{ { "run", "--kernel", "k", "--rootfs", "/", "--exec", "true", "--exec-boot", "system", NULL },
	  "not with --rootfs" },
	{ { "run", "--kernel", "k", "--timeout", "0", NULL }, "--timeout '0'" },
	{ { "run", "--kernel", "k", "--timeout", "5x", NULL }, "--timeout '5x'" },
	{ { "run", "--kernel", "k", "--report", "xml", NULL }, "--report 'xml'" },
	{ { "run", "--kernel", "k", "--report", "json:", NULL }, "--report 'json:'" },
};

START_TEST(bad_invocations)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct kv_config c;
	struct kv_err e;

	ck_assert_int_eq(parse(&c, &e, bc->args), -EINVAL);
	ck_assert_msg(strstr(e.msg, bc->needle), "case %d: message '%s' lacks '%s'",
		      _i, e.msg, bc->needle);
}
END_TEST

START_TEST(help_and_version)
{
	struct kv_config c;
	struct kv_err e;
	const char *h[] = { "--help", NULL };
	const char *rh[] = { "run", "--help", NULL };
	const char *v[] = { "--version", NULL };

	ck_assert_int_eq(parse(&c, &e, h), 0);
	ck_assert_int_eq(c.action, ACTION_HELP);
	ck_assert_int_eq(parse(&c, &e, rh), 0);
	ck_assert_int_eq(c.action, ACTION_HELP);
	ck_assert_int_eq(parse(&c, &e, v), 0);
	ck_assert_int_eq(c.action, ACTION_VERSION);
}
END_TEST

START_TEST(cmdline_console_default)
{
	struct kv_config c = { .cmdline = NULL };
	char buf[64];

	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0");
	c.cmdline = "quiet panic=-1";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 quiet panic=-1");
	c.cmdline = "quiet console=hvc0";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "quiet console=hvc0");
	c.cmdline = "netconsole=x"; /* not a console= parameter */
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 netconsole=x");
	c.cmdline = "0123456789012345678901234567890123456789012345678901234567890123456789";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), -ENAMETOOLONG);
}
END_TEST

/* --net user NICs are named to the guest's init by MAC (kvmini.dhcp=);
 * tap NICs are not (their network is the user's to configure). */
START_TEST(cmdline_dhcp_for_user_nics)
{
	const char *a[] = { "run", "--kernel", "k", "--net", "user", "--net", "tap=t0",
			    "--net", "user,mac=02:00:00:00:00:09", "--cmdline", "quiet", NULL };
	struct kv_config c;
	struct kv_err e = { 0 };
	char buf[256];

	ck_assert_int_eq(parse(&c, &e, a), 0);
	c.cmdline_defaults = false;
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 kvmini.dhcp=52:54:00:12:34:56,02:00:00:00:00:09 quiet");
	ck_assert_int_eq(config_build_cmdline(&c, buf, 40), -ENAMETOOLONG);
}
END_TEST

/* The defaults: added in order, each dropped when the user's command
 * line names its parameter, all dropped with --cmdline-defaults=off. */
START_TEST(cmdline_defaults)
{
	struct kv_config c;
	struct kv_err e;
	const char *on[] = { "run", "--kernel", "k", "--cmdline", "quiet", NULL };
	const char *off[] = { "run", "--kernel", "k", "--cmdline-defaults=off", NULL };
	const char *bad[] = { "run", "--kernel", "k", "--cmdline-defaults", "maybe", NULL };
	char buf[256];

	ck_assert_int_eq(parse(&c, &e, on), 0);
	ck_assert(c.cmdline_defaults);
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 pci=noearly iommu=noaperture quiet");
	/* The user's own parameter wins, whatever its value. */
	c.cmdline = "pci=nomsi quiet iommu=pt";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 pci=nomsi quiet iommu=pt");
	c.cmdline = "quiet pci=conf1"; /* only pci= named: iommu=noaperture stays */
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 iommu=noaperture quiet pci=conf1");
	c.cmdline = "xpci=1 iommu.strict=1"; /* other parameters: no effect */
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 pci=noearly iommu=noaperture xpci=1 iommu.strict=1");
	c.cmdline = NULL;
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 pci=noearly iommu=noaperture");
	ck_assert_int_eq(config_build_cmdline(&c, buf, 30), -ENAMETOOLONG);

	ck_assert_int_eq(parse(&c, &e, off), 0);
	ck_assert(!c.cmdline_defaults);
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0");
	ck_assert_int_eq(parse(&c, &e, bad), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "--cmdline-defaults 'maybe'"));
}
END_TEST

START_TEST(durations)
{
	uint64_t ms;

	ck_assert_int_eq(config_parse_duration("5s", &ms), 0);
	ck_assert_uint_eq(ms, 5000);
	ck_assert_int_eq(config_parse_duration("30", &ms), 0);
	ck_assert_uint_eq(ms, 30000);
	ck_assert_int_eq(config_parse_duration("500ms", &ms), 0);
	ck_assert_uint_eq(ms, 500);
	ck_assert_int_eq(config_parse_duration("2m", &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(config_parse_duration("1h", &ms), 0);
	ck_assert_uint_eq(ms, 3600000);
	ck_assert_int_ne(config_parse_duration("0", &ms), 0);
	ck_assert_int_ne(config_parse_duration("0s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("", &ms), 0);
	ck_assert_int_ne(config_parse_duration("s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("-5s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("+5s", &ms), 0);
	ck_assert_int_ne(config_parse_duration(" 5s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("5 s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("1.5s", &ms), 0);
	ck_assert_int_ne(config_parse_duration("5d", &ms), 0);
	ck_assert_int_ne(config_parse_duration("5sec", &ms), 0);
	ck_assert_int_ne(config_parse_duration("99999999999999999999", &ms), 0);
	ck_assert_int_ne(config_parse_duration("18446744073709551615h", &ms), 0);
	ck_assert_int_ne(config_parse_duration(NULL, &ms), 0);
}
END_TEST

START_TEST(exec_options)
{
	struct kv_config c;
	struct kv_err e;
	const char *a[] = { "run", "--kernel", "k", "--initrd", "i", "--exec", "echo 'x'\n\"y\"",
			    "--timeout", "90s", "--report", "json:/tmp/r.json", "-q", NULL };
	const char *b[] = { "run", "--kernel", "k", "--report", "json", NULL };
	char buf[128];

	ck_assert_int_eq(parse(&c, &e, a), 0);
	ck_assert_str_eq(c.exec, "echo 'x'\n\"y\"");
	ck_assert_uint_eq(c.timeout_ms, 90000);
	ck_assert(c.report_json);
	ck_assert_str_eq(c.report_path, "/tmp/r.json");
	ck_assert(c.quiet);
	ck_assert_int_eq(parse(&c, &e, b), 0);
	ck_assert(c.report_json);
	ck_assert_ptr_null(c.report_path);
	ck_assert_ptr_null(c.exec);
	ck_assert_uint_eq(c.timeout_ms, 0);

	/* --exec adds panic=-1 unless the user chose a panic= */
	c = (struct kv_config){ .exec = "true" };
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 panic=-1");
	c.cmdline = "quiet";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 panic=-1 quiet");
	c.cmdline = "panic=10 console=ttyS0";
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "panic=10 console=ttyS0");
}
END_TEST

START_TEST(rootfs_and_shares)
{
	static struct kv_config c;
	struct kv_err e;
	const char *a[] = { "run", "--kernel", "k", "--rootfs", "/srv/tree,rw", "--cmdline", "quiet",
			    "--share", "/tmp/out:out,ro", "--exec", "true", NULL };
	const char *b[] = { "run", "--kernel", "k", "--rootfs", "/", NULL };
	char buf[512];

	ck_assert_int_eq(parse(&c, &e, a), 0);
	ck_assert_str_eq(c.cmdline, "quiet root=kvmini-root rootfstype=virtiofs rw");
	ck_assert_uint_eq(c.dev.nr_shares, 2);
	ck_assert_str_eq(c.dev.shares[0].fs.tag, "out");
	ck_assert(c.dev.shares[0].fs.readonly);
	ck_assert_str_eq(c.dev.shares[1].fs.tag, "kvmini-root");
	ck_assert_str_eq(c.dev.shares[1].fs.path, "/srv/tree");
	ck_assert(!c.dev.shares[1].fs.readonly);
	ck_assert(config_init_own(c.initrd, c.cmdline));
	/* The init's mounts are told on the command line. */
	c.cmdline_defaults = false;
	ck_assert_int_eq(config_build_cmdline(&c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "console=ttyS0 panic=-1 kvmini.shares=out:ro,kvmini-root "
			      "quiet root=kvmini-root rootfstype=virtiofs rw");

	/* --exec-boot reaches the config; auto unless given. */
	ck_assert_int_eq(c.init.exec_boot, EXEC_BOOT_AUTO);
	{
		const char *d[] = { "run", "--kernel", "k", "--cmdline", "root=/dev/vda", "--exec", "id",
				    "--exec-boot", "system", NULL };

		ck_assert_int_eq(parse(&c, &e, d), 0);
		ck_assert_int_eq(c.init.exec_boot, EXEC_BOOT_SYSTEM);
	}
	/* Read-only by default, enforced by the share. */
	ck_assert_int_eq(parse(&c, &e, b), 0);
	ck_assert_str_eq(c.cmdline, "root=kvmini-root rootfstype=virtiofs ro");
	ck_assert(c.dev.shares[0].fs.readonly);
}
END_TEST

/* Found while fuzzing (tests/fuzz/fuzz_config.c frees each argv): "-hq"
 * returns at -h with getopt still pointing at the 'q' inside that argv;
 * resetting with optind = 1 made the next parse resume there, reading a
 * freed string and rejecting a valid command line. */
START_TEST(reparse_after_early_return)
{
	static struct kv_config cfg;
	struct kv_err e = { 0 };
	char *cluster = strdup("-hq");
	char *first[] = { "kvmini", "run", cluster, NULL };
	char *second[] = { "kvmini", "run", "--kernel", "k", NULL };

	ck_assert_int_eq(config_parse(3, first, &cfg, &e), 0);
	ck_assert_int_eq(cfg.action, ACTION_HELP);
	memset(cluster, 'Z', 3);
	free(cluster);
	ck_assert_msg(config_parse(4, second, &cfg, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(cfg.action, ACTION_RUN);
	ck_assert(!cfg.quiet);
	ck_assert_str_eq(cfg.kernel, "k");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, sizes);
	tcase_add_test(tc, run_defaults_and_values);
	tcase_add_test(tc, memory_options);
	tcase_add_loop_test(tc, bad_invocations, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, help_and_version);
	tcase_add_test(tc, cmdline_console_default);
	tcase_add_test(tc, cmdline_defaults);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, exec_options);
	tcase_add_test(tc, cmdline_dhcp_for_user_nics);
	tcase_add_test(tc, rootfs_and_shares);
	tcase_add_test(tc, reparse_after_early_return);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(config_suite());
}
