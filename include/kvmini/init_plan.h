/* The built-in init's mount plan: a pure function from the parsed
 * options to the list of mount operations, so that what the guest sees
 * is decided (and unit-tested) on the host; guest-boot/init/init.c only
 * carries the operations out, in order.
 *
 * Early (in the initramfs, before the root): /proc, /sys, /dev
 * (devtmpfs), /dev/pts, /dev/shm. They are moved into the new root later.
 *
 * The root (mounted at PLAN_NEWROOT, then switched to):
 *   read-only (the default; "rw" on the command line makes it writable):
 *     - tmpfs, empty, on /run (0755: a booting system expects it empty),
 *       /tmp and /var/tmp (1777: scratch), /var/log (0755: this VM's logs
 *       only, never the root's own);
 *     - overlayfs with a tmpfs upper layer on /var/lib and /var/cache:
 *       their content stays visible (dpkg's database, debconf's cache,
 *       systemd's state) and writable, and the writes vanish at power-off;
 *       when the kernel has no overlayfs they stay read-only;
 *     - the same overlay on each folder the user names (--overlay PATH);
 *     - /etc/hostname, /etc/hosts and /etc/fstab generated in
 *       /run/kvmini/etc and bind-mounted read-only over the root's (when
 *       the root has them), so the guest does not take the host's names or
 *       its boot-time mounts.
 *   read-write: tmpfs on /run and /tmp, the user's overlays; the root's own
 *     /etc and /var are left as they are (it is the user's system).
 * Mount points that the read-only root lacks are skipped (it cannot get
 * new folders).
 * Shares (kvmini.shares=, the root's own tag left out): each on
 * /mnt/TAG (read-only for TAG:ro), in a tmpfs mounted over /mnt, so
 * that neither a read-only root nor the host's folder needs (or gets) a
 * folder per share; the root's own /mnt is hidden while they are. */
#ifndef KVMINI_INIT_PLAN_H
#define KVMINI_INIT_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#define PLAN_NEWROOT "/newroot"
#define PLAN_PATH_MAX 256
#define PLAN_DATA_MAX 1024
#define PLAN_MAX_OPS 80
#define INIT_MAX_OVERLAYS_ALL 10 /* the user's (at most 8) and /var/lib, /var/cache */

enum plan_kind {
	PLAN_MKDIR,   /* mkdir -p dst (mode in flags) */
	PLAN_MOUNT,   /* mount(src, dst, fstype, flags, data) */
	PLAN_MOVE,    /* mount(src, dst, NULL, MS_MOVE) */
	PLAN_BIND_RO, /* bind src over dst, then remount it read-only */
	PLAN_WRITE,   /* write data to the file dst (mode 0644) */
};

#define PLAN_IF_EXISTS   1u /* skip when dst does not exist */
#define PLAN_BEST_EFFORT 2u /* a failure is logged, not fatal */

struct plan_op {
	enum plan_kind kind;
	unsigned opt;                 /* PLAN_IF_EXISTS | PLAN_BEST_EFFORT */
	char src[PLAN_PATH_MAX];
	char dst[PLAN_PATH_MAX];
	char fstype[32];              /* "" for the root: try each file system the kernel has */
	unsigned long flags;          /* MS_* for mounts, the mode for PLAN_MKDIR */
	char data[PLAN_DATA_MAX];     /* mount data, or the file's content */
};

struct plan_in {
	const char *root;            /* /dev/vda, or a virtiofs tag */
	const char *fstype;          /* "" or NULL: not given */
	const char *rootflags;       /* "" or NULL: none */
	bool rw;
	const char *const *overlays; /* absolute guest paths */
	unsigned nr_overlays;
	const char *hostname;        /* NULL: "kvmini" */
	const char *shares;          /* kvmini.shares=: "TAG[:ro],..."; NULL: none */
};

#define PLAN_SHARE_TAG_MAX 36 /* VIRTIO_FS_TAG_MAX, without virtio's headers */

/* A share tag as kvmini gives them and the init mounts them on /mnt/TAG:
 * 1 to 36 bytes of letters, digits, '.', '_' and '-', not starting with
 * '.' (so never "." or ".."). config checks --share with it, the init
 * kvmini.shares=. */
bool plan_share_tag_ok(const char *tag);

/* The early mounts. Returns the number of operations written to @ops. */
int plan_early(struct plan_op *ops, unsigned max) __attribute__((warn_unused_result));

/* The root and everything under it. Returns the number of operations, or
 * -EINVAL (a bad overlay path, no root: a message in @err) or -ENOSPC. */
int plan_root(const struct plan_in *in, struct plan_op *ops, unsigned max, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Checks an --overlay path: absolute, normalized (no "." or ".." parts,
 * no "//", no trailing '/'), not "/", no ',' ':' or '\' (overlayfs
 * option syntax), not inside the tmpfs folders. 0 or -EINVAL + @err. */
int plan_check_overlay(const char *path, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
