/* initramfs_build: the archive kvmini makes for its built-in init, from a
 * synthetic bzImage (release in its kernel_version field) and module
 * tree, unpacked with the system's `cpio -i`: the init byte for byte,
 * the config the init will parse (modules in load order), the command,
 * the modules decompressed; and the errors found before any VM runs. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvmini/init_conf.h"
#include "kvmini/initramfs.h"
#include "../check_main.h"
#include "fake_kmods.h"
#include "test_util.h"

#define VM "vermagic=" FAKE_RELEASE " SMP"

struct fixture {
	char *base, *tree, *kernel;
	uint8_t *ext4_elf;
	size_t ext4_len;
	struct initramfs_cfg cfg;
};

static void setup(struct fixture *f, bool with_version)
{
	size_t len, n;
	uint8_t *bz = test_make_bzimage(&(struct test_bz_opts){ 0 }, &len);
	static const char banner[] = FAKE_RELEASE " (builder@host) #1 SMP PREEMPT_DYNAMIC";

	f->tree = fake_tree_new(&f->base);
	if (with_version) {
		test_put16(bz + 0x20e, 0x300);
		memcpy(bz + 0x200 + 0x300, banner, sizeof(banner));
	}
	f->kernel = test_path(f->base, "vmlinuz");
	test_write_file(f->kernel, bz, len);
	free(bz);
	free(fake_ko_write(f->tree, "kernel/drivers/virtio/virtio.ko", FAKE_KO_PLAIN, &n, "depends=", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/drivers/virtio/virtio_pci.ko", FAKE_KO_PLAIN, &n,
			   "depends=virtio", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/drivers/block/virtio_blk.ko", FAKE_KO_ZSTD, &n,
			   "depends=virtio", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/fs/jbd2/jbd2.ko", FAKE_KO_PLAIN, &n, "depends=", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/crypto/crc32c_generic.ko", FAKE_KO_PLAIN, &n,
			   "alias=crypto-crc32c", "depends=", VM, NULL));
	f->ext4_elf = fake_ko_write(f->tree, "kernel/fs/ext4/ext4.ko", FAKE_KO_XZ, &f->ext4_len,
				    "depends=jbd2", "softdep=pre: crypto-crc32c", VM, NULL);
	f->cfg = (struct initramfs_cfg){
		.kernel_path = f->kernel, .modules_dir = f->tree,
		.cmdline = "console=ttyS0 panic=-1 root=/dev/vda",
		.exec = "echo \"hi\"\nexit 3\n", .cwd = "/srv/proj", .home = "/root", .term = "xterm",
		.virtio_pci = true, .disks = true,
	};
}

static void teardown(struct fixture *f)
{
	free(f->ext4_elf);
	free(f->kernel);
	free(f->tree);
	test_tmpdir_remove(f->base);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char *path = test_path(dir, name), *buf;
	FILE *fp = fopen(path, "rb");
	long n;

	ck_assert_msg(fp != NULL, "%s is missing from the archive", name);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	free(path);
	*len = (size_t)n;
	return buf;
}

START_TEST(layout_round_trip)
{
	static const char *const order[] = { "virtio.ko", "virtio_pci.ko", "virtio_blk.ko",
					     "crc32c_generic.ko", "jbd2.ko", "ext4.ko" };
	struct fixture f;
	struct kv_err e = { 0 };
	struct init_conf conf;
	char err[256], cmd[4096], *text, *out, *archive;
	size_t len, n;
	void *buf;
	struct stat st;

	if (system("command -v cpio >/dev/null 2>&1") != 0)
		ck_abort_msg("cpio is not installed (tools/install-deps installs it)");
	setup(&f, true);
	ck_assert_msg(initramfs_build(&f.cfg, &buf, &len, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(len % 4, 0);
	archive = test_path(f.base, "initramfs.cpio");
	test_write_file(archive, buf, len);
	free(buf);
	out = test_path(f.base, "out");
	snprintf(cmd, sizeof(cmd), "mkdir '%s' && cd '%s' && cpio -i --quiet -d --no-absolute-filenames < '%s'",
		 out, out, archive);
	ck_assert_int_eq(system(cmd), 0);

	text = slurp(out, "init", &n);
	ck_assert_uint_eq(n, (size_t)(initramfs_init_blob_end - initramfs_init_blob));
	ck_assert_mem_eq(text, initramfs_init_blob, n);
	ck_assert_mem_eq(text, "\x7f" "ELF", 4);
	free(text);
	char *p = test_path(out, "init");
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	free(p);
	for (const char *const *d = (const char *const[]){ "dev", "proc", "sys", "run", "tmp", "newroot",
							    "kvmini/modules", NULL }; *d; d++) {
		p = test_path(out, *d);
		ck_assert_msg(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "no folder %s", *d);
		free(p);
	}

	text = slurp(out, "kvmini/init.conf", &n);
	ck_assert_msg(init_conf_parse(text, n, &conf, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(conf.nr_modules, 6);
	for (unsigned i = 0; i < 6; i++)
		ck_assert_str_eq(conf.modules[i], order[i]);
	ck_assert(conf.exec);
	ck_assert_str_eq(conf.cwd, "/srv/proj");
	ck_assert(!conf.cwd_strict);
	ck_assert_str_eq(conf.home, "/root");
	ck_assert_str_eq(conf.term, "xterm");
	ck_assert_ptr_null(conf.path);
	free(text);

	text = slurp(out, "kvmini/exec", &n);
	ck_assert_str_eq(text, f.cfg.exec);
	free(text);
	text = slurp(out, "kvmini/modules/ext4.ko", &n);
	ck_assert_uint_eq(n, f.ext4_len);
	ck_assert_mem_eq(text, f.ext4_elf, n);
	free(text);
	free(out);
	free(archive);
	teardown(&f);
}
END_TEST

START_TEST(errors_before_the_vm)
{
	struct fixture f;
	struct kv_err e = { 0 };
	const char *bad_overlay[] = { "/etc/../x" };
	size_t len;
	void *buf;

	setup(&f, true);
	f.cfg.cmdline = "console=ttyS0";
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -EINVAL);
	test_assert_msg(e.msg, "root=", NULL);
	f.cfg.cmdline = "root=UUID=1234";
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -EINVAL);
	test_assert_msg(e.msg, "UUID=1234", "/dev/NAME", NULL);
	f.cfg.cmdline = "root=/dev/vda";
	f.cfg.overlays = bad_overlay;
	f.cfg.nr_overlays = 1;
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -EINVAL);
	test_assert_msg(e.msg, "/etc/../x", NULL);
	f.cfg.nr_overlays = 0;
	/* A device whose driver the tree lacks. */
	f.cfg.nets = true;
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -ENOENT);
	test_assert_msg(e.msg, "virtio_net", "--net", f.tree, NULL);
	f.cfg.nets = false;
	/* rootfstype=virtiofs: its module is needed. */
	f.cfg.cmdline = "root=share rootfstype=virtiofs";
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -ENOENT);
	test_assert_msg(e.msg, "virtiofs", f.tree, NULL);
	/* No tree given, none at /lib/modules/RELEASE. */
	f.cfg.cmdline = "root=/dev/vda";
	f.cfg.modules_dir = NULL;
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -ENOENT);
	test_assert_msg(e.msg, "/lib/modules/" FAKE_RELEASE, FAKE_RELEASE, "--modules", NULL);
	teardown(&f);

	/* A kernel with no release: only --modules can say where. */
	setup(&f, false);
	f.cfg.modules_dir = NULL;
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), -EINVAL);
	test_assert_msg(e.msg, f.kernel, "--modules", NULL);
	f.cfg.modules_dir = f.tree;
	ck_assert_int_eq(initramfs_build(&f.cfg, &buf, &len, &e), 0);
	free(buf);
	teardown(&f);
}
END_TEST

START_TEST(release_from_elf_banner)
{
	struct test_elf_opts o = { 0 };
	char *dir = test_tmpdir(), *path = test_path(dir, "vmlinux"), rel[64];
	struct kv_err e = { 0 };
	size_t len;
	uint8_t *elf = test_make_elf(&o, &len);
	static const char banner[] = "Linux version 6.1.0-57-amd64 (debian-kernel@lists) #1 SMP";

	memcpy(elf + TEST_ELF_SEG_OFF + 0x40, banner, sizeof(banner));
	test_write_file(path, elf, len);
	ck_assert_int_eq(boot_kernel_release(path, rel, sizeof(rel), &e), 0);
	ck_assert_str_eq(rel, "6.1.0-57-amd64");
	free(elf);
	free(path);
	test_tmpdir_remove(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("initramfs");
	TCase *tc = tcase_create("initramfs");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, layout_round_trip);
	tcase_add_test(tc, errors_before_the_vm);
	tcase_add_test(tc, release_from_elf_banner);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
