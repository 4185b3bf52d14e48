/* The guest kernel's own modules, for the initramfs kvmini builds
 * (guest-boot/initramfs.c): which files the guest must load, in which
 * order, found in the kernel's module tree with libkmod, and read with
 * .ko.xz / .ko.zst decompressed in the host. */
#ifndef KVMINI_KMODS_H
#define KVMINI_KMODS_H

#include <stdbool.h>
#include <stddef.h>
#include "kvmini/err.h"

/* A module the machine needs. */
struct kmod_want {
	const char *name;  /* module name ("virtio_blk"; '-' and '_' are the same) */
	bool required;     /* missing (and not built in): an error; else skipped */
	const char *why;   /* for the error: "the driver of --disk" */
};

#define KMODS_MAX 96

struct kmods_entry {
	char *name;  /* normalized: '_' */
	char *path;  /* the file in the tree */
};

/* Modules in load order: every module after its dependencies (modinfo
 * depends=) and its soft pre-dependencies (softdep= pre:, resolved by
 * alias). */
struct kmods {
	struct kmods_entry v[KMODS_MAX];
	unsigned n;
	unsigned builtin;  /* wanted modules the kernel has built in (modules.builtin) */
	bool indexed;      /* the tree has depmod's index (modules.dep.bin) */
};

/* Resolves @want in the tree @dir (a lib/modules/RELEASE folder) for the
 * kernel @release (checked against each module's vermagic; NULL: not
 * checked). A tree indexed by depmod is read through libkmod's index;
 * one unpacked from a package without depmod is walked, and soft
 * dependencies on aliases are looked up among its crypto modules (the
 * only soft dependencies distribution kernels have: ext4's crc32c).
 * Errors name the module, why it is needed and @dir. */
int kmods_resolve(const char *dir, const char *release, const struct kmod_want *want,
		  unsigned nr_want, struct kmods *out, struct kv_err *e) KV_MUST_CHECK;
void kmods_free(struct kmods *m);

/* Reads a module file whole into malloc'd memory, decompressing xz and
 * zstd; the result is checked to be ELF. */
int kmod_file_read(const char *path, void **data, size_t *len, struct kv_err *e) KV_MUST_CHECK;

#endif
