/* Shared by fuzz_bzimage and fuzz_elf: runs boot_load on a kernel file
 * made of the fuzzer's bytes (a memfd reached through /proc/self/fd)
 * in 64 MiB of malloc'd guest RAM. */
#ifndef KVMINI_TESTS_FUZZ_BOOT_H
#define KVMINI_TESTS_FUZZ_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"

#define FB_RAM_SIZE (64u << 20)

void fuzz_boot_init(void);
/* Input: one flags byte, then the kernel file. Flags: bits 0-1 boot
 * mode (3: @default_mode), bit 2 an initrd, bit 3 a 2000-byte command
 * line, bits 4-5 CPUs - 1. */
void fuzz_boot_run(const uint8_t *data, size_t size, enum boot_mode default_mode);
/* Seed helper: the flags byte followed by @img. */
void fuzz_boot_seed(const char *dir, const char *name, uint8_t flags, const uint8_t *img,
		    size_t len);
/* Little-endian stores for building images. */
void fb_put16(uint8_t *p, uint16_t v);
void fb_put32(uint8_t *p, uint32_t v);
void fb_put64(uint8_t *p, uint64_t v);

#endif

/* A minimal vmlinux: ELF header, PT_LOAD of 0x200 bytes at 16 MiB (file
 * offset 0x1000), PT_NOTE with the Xen PVH entry note at 0x100. Writes
 * into @buf (FB_ELF_SIZE bytes). */
#define FB_ELF_SIZE 0x1200
void fb_make_elf(uint8_t *buf, bool elf32);
