/* Helpers shared by the guest-boot unit tests: malloc'd guest memory,
 * temp files, synthetic kernels (bzImage and ELF) built in memory, and a
 * boot_load case that ties them together. */
#ifndef KVMINI_TEST_BOOT_UTIL_H
#define KVMINI_TEST_BOOT_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/guest_mem.h"

/* Guest RAM at gpa 0, malloc'd (calloc: zero pages cost nothing). */
struct test_vm {
	struct guest_mem gm;
	uint8_t *mem;
	size_t size;
};
void test_vm_init(struct test_vm *vm, size_t size);
void test_vm_free(struct test_vm *vm);

/* A fresh directory under /tmp, removed with everything in it by
 * test_tmpdir_remove. */
char *test_tmpdir(void);
void test_tmpdir_remove(char *dir);
/* Returns a malloc'd "dir/name". */
char *test_path(const char *dir, const char *name);
void test_write_file(const char *path, const void *data, size_t len);
/* A sparse file of @len bytes (cheap even when large). */
void test_write_sparse(const char *path, uint64_t len);

/* Little-endian stores into a byte buffer. */
void test_put16(uint8_t *p, uint16_t v);
void test_put32(uint8_t *p, uint32_t v);
void test_put64(uint8_t *p, uint64_t v);
uint16_t test_get16(const uint8_t *p);
uint32_t test_get32(const uint8_t *p);
uint64_t test_get64(const uint8_t *p);

/* Synthetic ELF vmlinux: one PT_LOAD of @filesz bytes (pattern
 * 0x11, 0x12, ...) at @paddr with @memsz bytes in memory, and a PT_NOTE
 * with the PVH entry unless @no_note. */
struct test_elf_opts {
	bool elf32;           /* ELFCLASS32 / EM_386, 4-byte note */
	bool no_note;
	uint16_t type;        /* 0: ET_EXEC */
	uint64_t paddr;       /* 0: 16 MiB */
	uint64_t filesz;      /* 0: 0x2000 */
	uint64_t memsz;       /* 0: filesz + 0x3000 */
	uint64_t entry;       /* 0: paddr + 0x100 */
	uint64_t offset;      /* segment file offset; 0: 0x1000 */
};
#define TEST_ELF_SEG_OFF 0x1000
/* Returns the malloc'd image; *len is its size. */
uint8_t *test_make_elf(const struct test_elf_opts *o, size_t *len);

/* Synthetic bzImage: 4 setup sectors, protected-mode part of @pm_size
 * bytes (pattern), version 2.15, 64-bit capable, relocatable, pref
 * address 16 MiB, init_size @init_size, cmdline_size 255. Tests then
 * poke header fields with test_put*. @payload (optional) is copied into
 * the protected-mode part at @payload_offset and described in the header. */
struct test_bz_opts {
	size_t pm_size;        /* 0: 0x4000 */
	uint32_t init_size;    /* 0: 8 MiB */
	const uint8_t *payload;
	size_t payload_len;
	uint32_t payload_offset; /* 0: 0x200 */
};
#define TEST_BZ_SETUP_SECTS 4
#define TEST_BZ_PM_OFFSET   ((TEST_BZ_SETUP_SECTS + 1) * 512)
uint8_t *test_make_bzimage(const struct test_bz_opts *o, size_t *len);

/* One boot_load call: a fresh temp dir with the kernel file in it, guest
 * RAM, the config and what boot_load returns. */
struct test_boot {
	char *dir;
	char *kernel;             /* "dir/<kernel_name>" */
	char *initrd;             /* "dir/initrd.img": neither created nor in cfg */
	char *cache;              /* "dir/cache/nested/dir": likewise; a loader
				   * given it as cache_dir creates it */
	struct test_vm vm;
	struct boot_cfg cfg;
	struct boot_entry entry;
	struct kv_err err;
};
/* Writes @img (unless NULL) to the kernel file and gives the case
 * @mem bytes of RAM and a config of kernel_path = kernel, cmdline
 * "console=ttyS0", BOOT_AUTO, one vCPU; tests change what they need. */
void test_boot_init(struct test_boot *b, const char *kernel_name, const uint8_t *img,
		    size_t len, size_t mem);
/* Frees the RAM and the paths and removes the temp dir with its files. */
void test_boot_fini(struct test_boot *b);
/* boot_load with the case's config, into its RAM, entry and err. */
int test_boot_load(struct test_boot *b);

/* Asserts that @msg contains every one of the NULL-terminated strings. */
void test_assert_msg(const char *msg, ...) __attribute__((sentinel));

#endif
