/* The initramfs kvmini builds itself, in memory, when the guest boots
 * from a root it names (root= on the command line) and no --initrd is
 * given: kvmini's own static init (guest-boot/init/), its config
 * (include/kvmini/init_conf.h), the command of --exec, and the kernel
 * modules the machine needs, from the guest kernel's own module tree.
 *
 * Layout of the newc archive (all owned by root):
 *   init                      the init (0755)
 *   dev/ proc/ sys/ run/ tmp/ newroot/
 *   kvmini/init.conf          the config (0644)
 *   kvmini/exec               --exec's command, byte for byte (0644)
 *   kvmini/modules/NAME.ko    each module, decompressed (0644) */
#ifndef KVMINI_INITRAMFS_H
#define KVMINI_INITRAMFS_H

#include <stdbool.h>
#include <stddef.h>
#include "kvmini/err.h"

struct initramfs_cfg {
	const char *kernel_path;   /* its release names the module tree */
	const char *modules_dir;   /* NULL: /lib/modules/RELEASE */
	const char *cmdline;       /* the guest's final command line: root=, rootfstype= */
	const char *exec;          /* --exec's command; NULL: the system's init */
	const char *cwd;           /* the command's working directory; NULL: HOME */
	bool cwd_strict;           /* a missing cwd fails the command */
	int exec_boot;             /* enum exec_boot (init_conf.h): how the command runs */
	const char *home, *path, *term, *hostname; /* NULL: the init's defaults */
	const char *const *overlays;
	unsigned nr_overlays;
	/* The machine's virtio devices (their drivers are loaded). */
	bool virtio_pci, virtio_mmio;
	bool disks, nets, console;
	bool shares;               /* virtio-fs: the init can mount them */
};

/* Builds the archive into a malloc'd buffer (*out, *len; a multiple of 4
 * bytes). Every problem is found here, before the VM starts: no root=,
 * an unusable root= or overlay, a module tree that is missing or lacks a
 * module the machine needs. */
int initramfs_build(const struct initramfs_cfg *c, void **out, size_t *len,
		    struct kv_err *e) KV_MUST_CHECK;

/* The built-in init, for tests. */
extern const unsigned char initramfs_init_blob[], initramfs_init_blob_end[];

#endif
