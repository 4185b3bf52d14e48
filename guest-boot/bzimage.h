/* guest-boot/bzimage.c: the Linux x86 boot protocol (private to
 * guest-boot/ and its unit tests). */
#ifndef KVMINI_GUEST_BOOT_BZIMAGE_H
#define KVMINI_GUEST_BOOT_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "boot_file.h"

#define BZ_MIN_VERSION   0x020c /* 2.12: xloadflags */
#define XLF_KERNEL_64    (1u << 0)

/* The setup header fields the loaders use, copied out of the file. */
struct bz_info {
	unsigned setup_sects;     /* after "0 means 4" */
	uint16_t version;
	uint8_t loadflags;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t syssize;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint32_t cmdline_size;
	uint32_t payload_offset;
	uint32_t payload_length;
	uint64_t pref_address;
	uint32_t init_size;
	size_t pm_offset;         /* file offset of the protected-mode kernel */
	size_t pm_size;           /* syssize * 16 bytes */
};

/* Content test: "HdrS" at 0x202 or the 0xaa55 boot flag at 0x1fe. */
bool bz_looks_like(const struct boot_file *f);
/* Validates the header common to both boot paths (size, boot flag,
 * "HdrS", protocol version, protected-mode part present). */
int bz_parse(const struct boot_file *f, struct bz_info *bz, struct kv_err *e) KV_MUST_CHECK;
/* Loads a bzImage with the 64-bit boot protocol. */
int bz_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	    struct boot_file *f, struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;

#endif
