/* kvmini's own initramfs (see include/kvmini/initramfs.h): the modules
 * the machine needs, resolved in the guest kernel's module tree, plus the
 * built-in init and what it is told. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvmini/boot.h"
#include "kvmini/cpio.h"
#include "kvmini/init_conf.h"
#include "kvmini/init_plan.h"
#include "kvmini/initramfs.h"
#include "kvmini/kmods.h"
#include "kvmini/log.h"

static const char *const dirs[] = { "dev", "proc", "sys", "run", "tmp", "newroot", "kvmini",
				    "kvmini/modules" };

/* What the machine needs, given its devices and its root. */
static unsigned wanted(const struct initramfs_cfg *c, const struct kcmdline *k,
		       struct kmod_want *w, char *fsmod, size_t fsmod_len)
{
	unsigned n = 0;

	/* First, so that a panic while loading the rest is reported. */
	w[n++] = (struct kmod_want){ "pvpanic_mmio", false, NULL };
	if (c->virtio_pci)
		w[n++] = (struct kmod_want){ "virtio_pci", true, "the virtio-pci transport" };
	if (c->virtio_mmio)
		w[n++] = (struct kmod_want){ "virtio_mmio", true, "the virtio-mmio transport" };
	if (c->console)
		w[n++] = (struct kmod_want){ "virtio_console", true, "the driver of --console virtio" };
	if (c->disks)
		w[n++] = (struct kmod_want){ "virtio_blk", true, "the driver of --disk" };
	if (c->nets)
		w[n++] = (struct kmod_want){ "virtio_net", true, "the driver of --net" };
	if (c->shares && strcmp(k->fstype, "virtiofs"))
		w[n++] = (struct kmod_want){ "virtiofs", true, "the driver of --share" };
	/* The root's file system: ext4 also mounts ext2 and ext3. */
	if (!k->fstype[0] || !strcmp(k->fstype, "ext2") || !strcmp(k->fstype, "ext3"))
		snprintf(fsmod, fsmod_len, "ext4");
	else
		snprintf(fsmod, fsmod_len, "%s", k->fstype);
	w[n++] = (struct kmod_want){ fsmod, true, "the root's file system (root=, rootfstype=)" };
	/* The scratch overlays of a read-only root are best effort; the
	 * user's --overlay needs it. */
	w[n++] = (struct kmod_want){ "overlay", c->nr_overlays > 0, "overlayfs, for --overlay" };
	return n;
}

static int resolve(const struct initramfs_cfg *c, const struct kcmdline *k, struct kmods *mods,
		   struct kv_err *e)
{
	char release[256], dir[PATH_MAX], fsmod[64];
	struct kmod_want want[16];
	unsigned nr = wanted(c, k, want, fsmod, sizeof(fsmod));
	struct stat st;
	int r;

	r = boot_kernel_release(c->kernel_path, release, sizeof(release), e);
	if (r && !c->modules_dir)
		return r;
	if (c->modules_dir)
		snprintf(dir, sizeof(dir), "%s", c->modules_dir);
	else
		snprintf(dir, sizeof(dir), "/lib/modules/%s", release);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return kv_err_set(e, -ENOENT,
				  "the modules of kernel %s (%s) are not in %s: %s; give the kernel's module "
				  "tree with --modules DIR (its lib/modules/%s folder)",
				  r ? "?" : release, c->kernel_path, dir,
				  stat(dir, &st) ? strerror(errno) : "not a folder", r ? "RELEASE" : release);
	r = kmods_resolve(dir, r ? NULL : release, want, nr, mods, e);
	if (r)
		return r;
	char order[2048] = "";
	for (unsigned i = 0; i < mods->n; i++)
		snprintf(order + strlen(order), sizeof(order) - strlen(order), " %s", mods->v[i].name);
	LOG_DEBUG("kernel modules from %s (%s): %u to load, %u built in:%s", dir,
		  mods->indexed ? "depmod index" : "no index: walked", mods->n, mods->builtin, order);
	return 0;
}

/* Checks the root and overlays as the guest's init will, so a mistake
 * fails here rather than in the guest. */
static int check_plan(const struct initramfs_cfg *c, const struct kcmdline *k, struct kv_err *e)
{
	static struct plan_op ops[PLAN_MAX_OPS];
	struct plan_in in = {
		.root = k->root, .fstype = k->fstype, .rootflags = k->flags, .rw = k->rw,
		.overlays = c->overlays, .nr_overlays = c->nr_overlays, .hostname = c->hostname,
		.shares = k->shares,
	};
	char err[512];

	if (plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err)) < 0)
		return kv_err_set(e, -EINVAL, "%s", err);
	return 0;
}

static int make_conf(const struct initramfs_cfg *c, const struct kmods *mods, char names[][80],
		     char *buf, size_t cap, size_t *len, struct kv_err *e)
{
	struct init_conf conf = {
		.nr_modules = mods->n, .nr_overlays = c->nr_overlays, .exec = c->exec != NULL,
		.exec_boot = c->exec_boot, .cwd = c->cwd, .cwd_strict = c->cwd_strict, .home = c->home, .path = c->path,
		.term = c->term, .hostname = c->hostname,
	};
	char err[512];
	int n;

	if (c->nr_overlays > INIT_CONF_MAX_OVERLAYS)
		return kv_err_set(e, -EINVAL, "--overlay: at most %d folders", INIT_CONF_MAX_OVERLAYS);
	for (unsigned i = 0; i < mods->n; i++) {
		snprintf(names[i], 80, "%.70s.ko", mods->v[i].name);
		conf.modules[i] = names[i];
	}
	for (unsigned i = 0; i < c->nr_overlays; i++)
		conf.overlays[i] = c->overlays[i];
	n = init_conf_write(&conf, buf, cap, err, sizeof(err));
	if (n < 0)
		return kv_err_set(e, n, "the guest init's config: %s", err);
	*len = (size_t)n;
	return 0;
}

int initramfs_build(const struct initramfs_cfg *c, void **out, size_t *out_len, struct kv_err *e)
{
	static char names[KMODS_MAX][80];
	size_t init_len = (size_t)(initramfs_init_blob_end - initramfs_init_blob);
	void *mod_data[KMODS_MAX] = { 0 };
	size_t mod_len[KMODS_MAX] = { 0 };
	char conf[INIT_CONF_MAX_SIZE], err[512], path[160];
	struct cpio_writer w;
	struct kcmdline k;
	struct kmods mods;
	size_t conf_len = 0, cap;
	uint8_t *buf = NULL;
	int r;

	if (kcmdline_parse(c->cmdline ? c->cmdline : "", &k, err, sizeof(err)))
		return kv_err_set(e, -EINVAL, "--cmdline: %s", err);
	r = check_plan(c, &k, e);
	if (r)
		return r;
	r = resolve(c, &k, &mods, e);
	if (r)
		return r;
	r = make_conf(c, &mods, names, conf, sizeof(conf), &conf_len, e);
	cap = cpio_entry_size("init", init_len) + cpio_entry_size("kvmini/init.conf", conf_len) +
	      cpio_trailer_size();
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		cap += cpio_entry_size(dirs[i], 0);
	if (c->exec)
		cap += cpio_entry_size("kvmini/exec", strlen(c->exec));
	for (unsigned i = 0; !r && i < mods.n; i++) {
		r = kmod_file_read(mods.v[i].path, &mod_data[i], &mod_len[i], e);
		snprintf(path, sizeof(path), "kvmini/modules/%.79s", names[i]);
		cap += cpio_entry_size(path, mod_len[i]);
	}
	if (!r && !(buf = malloc(cap)))
		r = kv_err_set(e, -ENOMEM, "out of memory for the initramfs (%zu bytes)", cap);
	if (!r) {
		cpio_init(&w, buf, cap);
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
			r = r ? r : cpio_add_dir(&w, dirs[i], 0755);
		r = r ? r : cpio_add_file(&w, "init", 0755, initramfs_init_blob, init_len);
		r = r ? r : cpio_add_file(&w, "kvmini/init.conf", 0644, conf, conf_len);
		if (c->exec)
			r = r ? r : cpio_add_file(&w, "kvmini/exec", 0644, c->exec, strlen(c->exec));
		for (unsigned i = 0; !r && i < mods.n; i++) {
			snprintf(path, sizeof(path), "kvmini/modules/%.79s", names[i]);
			r = cpio_add_file(&w, path, 0644, mod_data[i], mod_len[i]);
		}
		r = r ? r : cpio_finish(&w);
		if (r) {
			kv_err_set(e, r, "building the initramfs: %s", strerror(-r));
			free(buf);
		}
	}
	if (!r) {
		LOG_DEBUG("initramfs: init %zu bytes, %u modules, %zu bytes in all", init_len, mods.n, w.len);
		*out = buf;
		*out_len = w.len;
	}
	for (unsigned i = 0; i < mods.n; i++)
		free(mod_data[i]);
	kmods_free(&mods);
	return r;
}
