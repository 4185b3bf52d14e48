/* The built-in init's decisions, on the host: its mount plan for a
 * read-only and a read-write root (exact operations, in order), overlays
 * sorted and checked, the config format both ways, and the kernel
 * command line as the init reads it. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "kvmini/init_conf.h"
#include "kvmini/init_plan.h"
#include "../check_main.h"

static struct plan_op ops[PLAN_MAX_OPS];

/* "kind dst" lines of the plan, for whole-plan comparisons. */
static void describe(int n, char *buf, size_t len)
{
	static const char *const kinds[] = { "mkdir", "mount", "move", "bind-ro", "write" };

	buf[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s %s%s\n", kinds[ops[i].kind],
			 ops[i].kind == PLAN_MOUNT ? ops[i].fstype : "", ops[i].dst,
			 ops[i].opt & PLAN_BEST_EFFORT ? " (best effort)" :
			 ops[i].opt & PLAN_IF_EXISTS ? " (if exists)" : "");
}

static const struct plan_op *find(int n, enum plan_kind kind, const char *dst)
{
	for (int i = 0; i < n; i++)
		if (ops[i].kind == kind && !strcmp(ops[i].dst, dst))
			return &ops[i];
	return NULL;
}

START_TEST(early_mounts)
{
	char got[4096];
	int n = plan_early(ops, PLAN_MAX_OPS);

	ck_assert_int_eq(n, 10);
	describe(n, got, sizeof(got));
	ck_assert_str_eq(got, "mkdir /proc\nmountproc /proc\nmkdir /sys\nmountsysfs /sys\nmkdir /dev\n"
			      "mountdevtmpfs /dev\nmkdir /dev/pts\nmountdevpts /dev/pts\nmkdir /dev/shm\n"
			      "mounttmpfs /dev/shm\n");
	ck_assert_int_eq(plan_early(ops, 3), -ENOSPC);
}
END_TEST

START_TEST(read_only_root)
{
	const char *user[] = { "/var/lib", "/etc", "/home/user/proj" };
	struct plan_in in = { .root = "/dev/vda", .fstype = "ext4", .overlays = user, .nr_overlays = 3,
			      .hostname = "guest1" };
	char got[8192], err[256];
	const struct plan_op *op;
	int n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));

	ck_assert_msg(n > 0, "%s", err);
	describe(n, got, sizeof(got));
	ck_assert_str_eq(got,
		"mkdir /newroot\n"
		"mountext4 /newroot\n"
		"mounttmpfs /newroot/run\n"
		"move /newroot/dev\nmove /newroot/proc\nmove /newroot/sys\n"
		"mounttmpfs /newroot/tmp (if exists)\n"
		"mounttmpfs /newroot/var/tmp (if exists)\n"
		"mounttmpfs /newroot/var/log (if exists)\n"
		/* overlays sorted, parents first; /var/lib asked for by the user: strict */
		"mkdir /newroot/run/kvmini/overlay/0/upper\nmkdir /newroot/run/kvmini/overlay/0/work\n"
		"mountoverlay /newroot/etc\n"
		"mkdir /newroot/run/kvmini/overlay/1/upper\nmkdir /newroot/run/kvmini/overlay/1/work\n"
		"mountoverlay /newroot/home/user/proj\n"
		"mkdir /newroot/run/kvmini/overlay/2/upper\nmkdir /newroot/run/kvmini/overlay/2/work\n"
		"mountoverlay /newroot/var/cache (best effort)\n"
		"mkdir /newroot/run/kvmini/overlay/3/upper\nmkdir /newroot/run/kvmini/overlay/3/work\n"
		"mountoverlay /newroot/var/lib\n"
		"mkdir /newroot/run/kvmini/etc\n"
		"write /newroot/run/kvmini/etc/hostname\nwrite /newroot/run/kvmini/etc/hosts\n"
		"write /newroot/run/kvmini/etc/fstab\n"
		"bind-ro /newroot/etc/hostname (if exists)\nbind-ro /newroot/etc/hosts (if exists)\n"
		"bind-ro /newroot/etc/fstab (if exists)\n");
	op = find(n, PLAN_MOUNT, "/newroot");
	ck_assert_uint_eq(op->flags, MS_RDONLY);
	ck_assert_str_eq(op->src, "/dev/vda");
	op = find(n, PLAN_MOUNT, "/newroot/tmp");
	ck_assert_str_eq(op->data, "mode=1777");
	ck_assert_uint_eq(op->flags, MS_NOSUID | MS_NODEV);
	op = find(n, PLAN_MOUNT, "/newroot/etc");
	ck_assert_str_eq(op->data, "lowerdir=/newroot/etc,upperdir=/newroot/run/kvmini/overlay/0/upper,"
				   "workdir=/newroot/run/kvmini/overlay/0/work");
	op = find(n, PLAN_WRITE, "/newroot/run/kvmini/etc/hostname");
	ck_assert_str_eq(op->data, "guest1\n");
	op = find(n, PLAN_WRITE, "/newroot/run/kvmini/etc/hosts");
	ck_assert(strstr(op->data, "127.0.1.1\tguest1\n"));
	op = find(n, PLAN_BIND_RO, "/newroot/etc/hosts");
	ck_assert_str_eq(op->src, "/newroot/run/kvmini/etc/hosts");
}
END_TEST

START_TEST(read_write_root)
{
	struct plan_in in = { .root = "/dev/vdb1", .rw = true, .rootflags = "discard" };
	char got[4096], err[256];
	int n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));

	ck_assert_msg(n > 0, "%s", err);
	describe(n, got, sizeof(got));
	/* No rootfstype: the init tries each file system; nothing of the
	 * root's own /etc or /var is covered. */
	ck_assert_str_eq(got, "mkdir /newroot\nmount /newroot\nmounttmpfs /newroot/run\n"
			      "move /newroot/dev\nmove /newroot/proc\nmove /newroot/sys\n"
			      "mounttmpfs /newroot/tmp (if exists)\n");
	ck_assert_uint_eq(ops[1].flags, 0);
	ck_assert_str_eq(ops[1].data, "discard");
}
END_TEST

START_TEST(virtiofs_root)
{
	struct plan_in in = { .root = "hostroot", .fstype = "virtiofs" };
	char err[256];
	int n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));

	ck_assert_msg(n > 0, "%s", err);
	ck_assert_str_eq(ops[1].src, "hostroot");
	ck_assert_str_eq(ops[1].fstype, "virtiofs");
	ck_assert_uint_eq(ops[1].flags, MS_RDONLY);
}
END_TEST

/* --share next to a root: each share but the root's on /mnt/TAG, in a
 * tmpfs over /mnt, best effort; tags that are not names are refused. */
START_TEST(shares)
{
	struct plan_in in = { .root = "kvmini-root", .fstype = "virtiofs", .rw = true,
			      .shares = "kvmini-root:ro,out,data.v2:ro" };
	static const char *const bad[] = { "..", "a/b", "x:rw", "", "a,,b", "." };
	char got[4096], err[256];
	const struct plan_op *op;
	int n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));

	ck_assert_msg(n > 0, "%s", err);
	describe(n, got, sizeof(got));
	ck_assert_str_eq(got, "mkdir /newroot\nmountvirtiofs /newroot\nmounttmpfs /newroot/run\n"
			      "move /newroot/dev\nmove /newroot/proc\nmove /newroot/sys\n"
			      "mounttmpfs /newroot/tmp (if exists)\n"
			      "mkdir /newroot/mnt (best effort)\nmounttmpfs /newroot/mnt (best effort)\n"
			      "mkdir /newroot/mnt/out (best effort)\nmountvirtiofs /newroot/mnt/out (best effort)\n"
			      "mkdir /newroot/mnt/data.v2 (best effort)\n"
			      "mountvirtiofs /newroot/mnt/data.v2 (best effort)\n");
	/* A read-only root without /mnt: each step skipped, not fatal. */
	ck_assert_uint_eq(find(n, PLAN_MOUNT, "/newroot/mnt")->opt, PLAN_IF_EXISTS | PLAN_BEST_EFFORT);
	op = find(n, PLAN_MOUNT, "/newroot/mnt/out");
	ck_assert_str_eq(op->src, "out");
	ck_assert_uint_eq(op->flags, 0);
	op = find(n, PLAN_MOUNT, "/newroot/mnt/data.v2");
	ck_assert_str_eq(op->src, "data.v2");
	ck_assert_uint_eq(op->flags, MS_RDONLY);
	/* Only the root's tag: no /mnt tmpfs. */
	in.shares = "kvmini-root:ro";
	n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));
	ck_assert_ptr_null(find(n, PLAN_MOUNT, "/newroot/mnt"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		in.shares = bad[i];
		n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));
		if (bad[i][0] && strcmp(bad[i], "a,,b")) {
			ck_assert_msg(n == -EINVAL, "kvmini.shares=%s: %d", bad[i], n);
			ck_assert(strstr(err, "kvmini.shares="));
		} else {
			ck_assert_msg(n > 0, "kvmini.shares=%s: %s", bad[i], err); /* empty parts skipped */
		}
	}
}
END_TEST

START_TEST(bad_input)
{
	static const char *const bad[] = { "etc", "/", "/a,b", "/a:b", "/a//b", "/a/", "/a/../b", "/a/.",
					   "/tmp/x", "/var/log", "/proc/sys", "/run", "/dev/x" };
	struct plan_in in = { .root = "/dev/vda" };
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(plan_check_overlay(bad[i], err, sizeof(err)) == -EINVAL, "%s accepted", bad[i]);
		ck_assert(strstr(err, bad[i]));
		in.overlays = &bad[i];
		in.nr_overlays = 1;
		ck_assert_int_eq(plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err)), -EINVAL);
	}
	ck_assert_int_eq(plan_check_overlay("/var/lib/x", err, sizeof(err)), 0);
	/* Short paths: the trailing "/." and "/.." checks read no byte
	 * before the string (fuzz_config found "/-"). */
	ck_assert_int_eq(plan_check_overlay("/-", err, sizeof(err)), 0);
	ck_assert_int_eq(plan_check_overlay("/.", err, sizeof(err)), -EINVAL);
	in.nr_overlays = 0;
	in.root = "UUID=abcd";
	ck_assert_int_eq(plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "UUID=abcd"));
	in.root = "";
	ck_assert_int_eq(plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err)), -EINVAL);
	in.root = "/dev/vda";
	in.hostname = "bad host";
	ck_assert_int_eq(plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err)), -EINVAL);
	in.hostname = NULL;
	ck_assert_int_eq(plan_root(&in, ops, 5, err, sizeof(err)), -ENOSPC);
}
END_TEST

START_TEST(conf_round_trip)
{
	const char *mods[] = { "virtio.ko", "ext4.ko" }, *ovl[] = { "/etc" };
	struct init_conf c = { .nr_modules = 2, .nr_overlays = 1, .exec = true, .cwd = "/srv/a b",
			       .cwd_strict = true, .home = "/root", .path = "/bin:/usr/bin", .term = "xterm",
			       .hostname = "h", .exec_boot = EXEC_BOOT_SYSTEM };
	struct init_conf back;
	char buf[1024], err[256];
	int n;

	memcpy(c.modules, mods, sizeof(mods));
	memcpy(c.overlays, ovl, sizeof(ovl));
	n = init_conf_write(&c, buf, sizeof(buf), err, sizeof(err));
	ck_assert_msg(n > 0, "%s", err);
	ck_assert_str_eq(buf, "kvmini-init 1\nmodule virtio.ko\nmodule ext4.ko\noverlay /etc\nexec 1\n"
			      "exec_boot system\ncwd /srv/a b\ncwd_strict 1\nhome /root\npath /bin:/usr/bin\nterm xterm\n"
			      "hostname h\n");
	ck_assert_int_eq(init_conf_parse(buf, (size_t)n, &back, err, sizeof(err)), 0);
	ck_assert_uint_eq(back.nr_modules, 2);
	ck_assert_str_eq(back.modules[1], "ext4.ko");
	ck_assert_str_eq(back.overlays[0], "/etc");
	ck_assert(back.exec && back.cwd_strict);
	ck_assert_int_eq(back.exec_boot, EXEC_BOOT_SYSTEM);
	ck_assert_str_eq(back.cwd, "/srv/a b");
	ck_assert_str_eq(back.path, "/bin:/usr/bin");
	ck_assert_str_eq(back.hostname, "h");
	ck_assert_int_eq(init_conf_write(&c, buf, 20, err, sizeof(err)), -ENOSPC);
	c.cwd = "/a\nb";
	ck_assert_int_eq(init_conf_write(&c, buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	c.cwd = "rel";
	ck_assert_int_eq(init_conf_write(&c, buf, sizeof(buf), err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(conf_parse_rules)
{
	char ok[] = "kvmini-init 1\n# comment\n\nfuture_key x\nexec 0\nhome /h\nhome /h2\n";
	char nomagic[] = "kvmini-init 2\n", nul[] = "kvmini-init 1\nexec 1\n", badbool[] = "kvmini-init 1\nexec yes\n";
	char nonl[] = "kvmini-init 1\nexec 1", badkey[] = "kvmini-init 1\nExec 1\n", nokv[] = "kvmini-init 1\nexec\n";
	char slash[] = "kvmini-init 1\nmodule ../x.ko\n";
	char boot_direct[] = "kvmini-init 1\nexec_boot direct\n", boot_bad[] = "kvmini-init 1\nexec_boot systemd\n";
	struct init_conf c;
	char err[256];

	ck_assert_int_eq(init_conf_parse(ok, strlen(ok), &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.ignored, 1);
	ck_assert_str_eq(c.home, "/h2");
	ck_assert(!c.exec);
	ck_assert_int_eq(c.exec_boot, EXEC_BOOT_AUTO); /* absent: auto */
	ck_assert_int_eq(init_conf_parse(boot_direct, strlen(boot_direct), &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c.exec_boot, EXEC_BOOT_DIRECT);
	ck_assert_int_eq(init_conf_parse(boot_bad, strlen(boot_bad), &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "auto, direct or system"), "%s", err);
	ck_assert_int_eq(init_conf_parse(nomagic, strlen(nomagic), &c, err, sizeof(err)), -EINVAL);
	nul[16] = '\0';
	ck_assert_int_eq(init_conf_parse(nul, sizeof(nul) - 1, &c, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(init_conf_parse(badbool, strlen(badbool), &c, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "line 2"));
	ck_assert_int_eq(init_conf_parse(nonl, strlen(nonl), &c, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(init_conf_parse(badkey, strlen(badkey), &c, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(init_conf_parse(nokv, strlen(nokv), &c, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(init_conf_parse(slash, strlen(slash), &c, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(kernel_cmdline)
{
	struct kcmdline k;
	char err[256], longv[600];

	ck_assert_int_eq(kcmdline_parse("console=ttyS0 root=/dev/vda rootfstype=ext4 ro "
					"rootflags=\"a b\" rw init=/bin/x kvmini.dhcp=52:54:00:12:34:56,52:54:00:12:34:57 "
					"kvmini.shares=kvmini-root:ro,out -- root=/dev/evil", &k, err, sizeof(err)), 0);
	ck_assert_str_eq(k.root, "/dev/vda");
	ck_assert_str_eq(k.fstype, "ext4");
	ck_assert_str_eq(k.flags, "a b");
	ck_assert_str_eq(k.init, "/bin/x");
	ck_assert_str_eq(k.dhcp, "52:54:00:12:34:56,52:54:00:12:34:57");
	ck_assert_str_eq(k.shares, "kvmini-root:ro,out");
	ck_assert(k.rw);
	ck_assert(!kcmdline_root_is_virtiofs(&k));
	ck_assert_int_eq(kcmdline_parse("\"root=tag\" rootfstype=virtiofs rw ro", &k, err, sizeof(err)), 0);
	ck_assert_str_eq(k.root, "tag");
	ck_assert(!k.rw);
	ck_assert(kcmdline_root_is_virtiofs(&k));
	ck_assert_int_eq(kcmdline_parse("quiet", &k, err, sizeof(err)), 0);
	ck_assert_str_eq(k.root, "");
	ck_assert_str_eq(k.dhcp, "");
	ck_assert_str_eq(k.shares, "");
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	memcpy(longv, "root=", 5);
	ck_assert_int_eq(kcmdline_parse(longv, &k, err, sizeof(err)), -ENAMETOOLONG);
	ck_assert(strstr(err, "root="));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("init_plan");
	TCase *tc = tcase_create("init_plan");

	tcase_add_test(tc, early_mounts);
	tcase_add_test(tc, read_only_root);
	tcase_add_test(tc, read_write_root);
	tcase_add_test(tc, virtiofs_root);
	tcase_add_test(tc, shares);
	tcase_add_test(tc, bad_input);
	tcase_add_test(tc, conf_round_trip);
	tcase_add_test(tc, conf_parse_rules);
	tcase_add_test(tc, kernel_cmdline);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
