/* The options of kvmini's own initramfs and built-in init (--modules,
 * --workdir, --overlay, --rootfs): pure parsing and checks, unit-tested
 * (tests/unit/core/test_config_init.c). kvmini builds its own initramfs
 * when no --initrd is given and the command line names root=. */
#ifndef KVMINI_CONFIG_INIT_H
#define KVMINI_CONFIG_INIT_H

#include <stdbool.h>
#include "kvmini/err.h"
#include "kvmini/initramfs.h"

#define CONFIG_MAX_OVERLAYS 8

struct config_init {
	const char *modules_dir;  /* --modules DIR: the guest kernel's module tree */
	const char *workdir;      /* --workdir DIR: the command's directory in the guest */
	int exec_boot;            /* --exec-boot: enum exec_boot of init_conf.h */
	bool exec_boot_set;
	const char *overlays[CONFIG_MAX_OVERLAYS]; /* --overlay PATH */
	unsigned nr_overlays;
	char rootfs[4096];        /* --rootfs DIR[,rw]: DIR; "" when absent */
	bool rootfs_rw;           /* ...,rw: the guest may write through */
	char cmdline[8192];       /* with --rootfs: the user's command line + the root's */
};

/* The virtio-fs tag of --rootfs's share. */
#define CONFIG_ROOTFS_TAG "kvmini-root"

/* Takes one of the options above; @opt is its name without "--". */
int config_init_option(struct config_init *ci, const char *opt, const char *arg,
		       struct kv_err *e) KV_MUST_CHECK;

/* True when kvmini boots with its own initramfs: no --initrd, and root=
 * on the user's command line. */
bool config_init_own(const char *initrd, const char *user_cmdline);

/* --rootfs: adds the root's share to @dev (read-only unless rw) and
 * points *@cmdline at the user's command line with root=, rootfstype=
 * and rw/ro for kvmini's own init. Refuses --initrd and a root= of the
 * user's. Nothing without --rootfs. */
struct config_devices;
int config_init_rootfs(struct config_init *ci, struct config_devices *dev, const char **cmdline,
		       const char *initrd, struct kv_err *e) KV_MUST_CHECK;

/* Checks the options against the rest of the run: they need kvmini's own
 * initramfs; --exec needs it or --initrd. */
int config_init_check(const struct config_init *ci, const char *initrd, const char *user_cmdline,
		      bool exec, struct kv_err *e) KV_MUST_CHECK;

#endif
