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
	const char *overlays[CONFIG_MAX_OVERLAYS]; /* --overlay PATH */
	unsigned nr_overlays;
	const char *rootfs;       /* --rootfs DIR[,rw] (needs virtio-fs: refused for now) */
};

/* Takes one of the options above; @opt is its name without "--". */
int config_init_option(struct config_init *ci, const char *opt, const char *arg,
		       struct kv_err *e) KV_MUST_CHECK;

/* True when kvmini boots with its own initramfs: no --initrd, and root=
 * on the user's command line. */
bool config_init_own(const char *initrd, const char *user_cmdline);

/* Checks the options against the rest of the run: they need kvmini's own
 * initramfs; --exec needs it or --initrd. */
int config_init_check(const struct config_init *ci, const char *initrd, const char *user_cmdline,
		      bool exec, struct kv_err *e) KV_MUST_CHECK;

#endif
