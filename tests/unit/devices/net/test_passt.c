/* --net user's passt: the command line kvmini gives it, the errors a user
 * sees when it is missing, and (suite net_passt_run, when passt is
 * installed) a real passt started on its socketpair, alive while the
 * backend lives, reaped when it is destroyed. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmini/net_passt.h"
#include "../../check_main.h"

static char *join(char **argv)
{
	static char out[1024];

	out[0] = 0;
	for (unsigned i = 0; argv[i]; i++) {
		strcat(out, i ? " " : "");
		strcat(out, argv[i]);
	}
	return out;
}

START_TEST(argv_with_forwards)
{
	struct net_user_cfg cfg = { .nr_fwd = 3 };
	char buf[1024], *argv[32];

	cfg.fwd[0] = (struct net_forward){ false, "127.0.0.1", 2222, 22 };
	cfg.fwd[1] = (struct net_forward){ true, "", 5353, 53 };
	cfg.fwd[2] = (struct net_forward){ false, "::1", 8080, 80 };
	ck_assert_int_eq(net_passt_argv(&cfg, "/usr/bin/passt", 7, argv, 32, buf, sizeof(buf)), 0);
	ck_assert_str_eq(join(argv), "/usr/bin/passt --foreground --quiet --fd 7 --mtu 65520 "
			 "-t 127.0.0.1/2222:22 -u 5353:53 -t ::1/8080:80");
}
END_TEST

START_TEST(argv_too_small)
{
	struct net_user_cfg cfg = { .nr_fwd = 1 };
	char buf[1024], *argv[32];

	cfg.fwd[0] = (struct net_forward){ false, "", 1, 2 };
	ck_assert_int_eq(net_passt_argv(&cfg, "passt", 3, argv, 8, buf, sizeof(buf)), -ENOSPC);
	ck_assert_int_eq(net_passt_argv(&cfg, "passt", 3, argv, 32, buf, 20), -ENOSPC);
}
END_TEST

START_TEST(missing_passt_names_the_package)
{
	struct net_user_cfg cfg = { 0 };
	struct net_backend *be = NULL;
	struct kv_err e = { 0 };
	char dir[] = "/tmp/kvmini-nopasst-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	setenv("PATH", dir, 1);
	unsetenv("KVMINI_PASST");
	ck_assert_int_eq(net_passt_backend_start(&cfg, &be, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "passt is not installed") && strstr(e.msg, "apt-get install passt") && strstr(e.msg, "passt=PATH"),
		      "%s", e.msg);
	ck_assert_ptr_null(be);
	rmdir(dir);
}
END_TEST

START_TEST(bad_passt_path)
{
	struct net_user_cfg cfg = { .passt = "/nonexistent/passt" };
	struct net_backend *be = NULL;
	struct kv_err e = { 0 };

	ck_assert_int_eq(net_passt_backend_start(&cfg, &be, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "/nonexistent/passt") && strstr(e.msg, "passt="), "%s", e.msg);
	cfg.passt = NULL;
	setenv("KVMINI_PASST", "/nonexistent/passt2", 1);
	ck_assert_int_eq(net_passt_backend_start(&cfg, &be, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "/nonexistent/passt2") && strstr(e.msg, "KVMINI_PASST"),
		      "%s", e.msg);
	ck_assert_ptr_null(be);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_passt");
	TCase *tc = tcase_create("passt");

	tcase_add_test(tc, argv_with_forwards);
	tcase_add_test(tc, argv_too_small);
	tcase_add_test(tc, missing_passt_names_the_package);
	tcase_add_test(tc, bad_passt_path);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
