/* guest-boot/elf_pvh.c: ELF vmlinux through its PVH entry note
 * (private to guest-boot/ and its unit tests). */
#ifndef KVMINI_GUEST_BOOT_ELF_PVH_H
#define KVMINI_GUEST_BOOT_ELF_PVH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "boot_file.h"

bool pvh_looks_like(const struct boot_file *f);
/* Loads an ELF vmlinux through its PVH note. @what names the kernel in
 * errors (the file, or "FILE (unpacked vmlinux)"); @cmdline_max is the
 * command-line limit to enforce (0: only the VMM's own limit). */
int pvh_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	     struct boot_file *f, const char *what, uint64_t cmdline_max,
	     struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;
/* The PVH entry point of an ELF image, without loading it. */
int pvh_find_entry(const struct boot_file *f, const char *what, uint32_t *entry,
		   struct kv_err *e) KV_MUST_CHECK;

#endif
