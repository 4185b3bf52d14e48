/* See fuzz_boot.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <elf.h>
#include <unistd.h>

#include "fuzz_boot.h"
#include "fuzz_common.h"

static struct guest_mem gm;
static uint8_t *ram;
static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];
static char long_cmdline[2001];

void fuzz_boot_init(void)
{
	static const uint8_t cpio_magic[] = "070701";

	ram = calloc(1, FB_RAM_SIZE);
	kernel_fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
	initrd_fd = memfd_create("fuzz-initrd", MFD_CLOEXEC);
	if (!ram || kernel_fd < 0 || initrd_fd < 0 || gm_add_region(&gm, 0, FB_RAM_SIZE, ram))
		abort();
	snprintf(kernel_path, sizeof(kernel_path), "/proc/self/fd/%d", kernel_fd);
	snprintf(initrd_path, sizeof(initrd_path), "/proc/self/fd/%d", initrd_fd);
	if (write(initrd_fd, cpio_magic, 6) != 6 || ftruncate(initrd_fd, 4096))
		abort();
	memset(long_cmdline, 'x', sizeof(long_cmdline) - 1);
}

void fuzz_boot_run(const uint8_t *data, size_t size, enum boot_mode default_mode)
{
	static const enum boot_mode modes[] = { BOOT_AUTO, BOOT_BZIMAGE, BOOT_PVH };
	uint8_t flags = size ? data[0] : 0;
	struct boot_cfg cfg = {
		.kernel_path = kernel_path,
		.initrd_path = flags & 4 ? initrd_path : NULL,
		.cmdline = flags & 8 ? long_cmdline : "console=ttyS0",
		.mode = (flags & 3) == 3 ? default_mode : modes[flags & 3],
		.ncpus = 1 + (flags >> 4 & 3),
		.cache_dir = NULL,
	};
	struct boot_entry entry;
	struct kv_err e = { 0 };

	if (size)
		data++, size--;
	if (ftruncate(kernel_fd, 0) || pwrite(kernel_fd, data, size, 0) != (ssize_t)size)
		abort();
	int r = boot_load(&gm, &cfg, &entry, &e);

	/* FUZZ_VERBOSE=1: say what the loader made of each input (seed checks). */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "boot_load: %d %s\n", r, r ? e.msg : "loaded");
	if (r == 0)
		FUZZ_CHECK(entry.rip < FB_RAM_SIZE || entry.kind == ENTRY_LINUX64);
	else
		FUZZ_CHECK(e.msg[0] != '\0');   /* every failure says why */
}

void fuzz_boot_seed(const char *dir, const char *name, uint8_t flags, const uint8_t *img,
		    size_t len)
{
	uint8_t *buf = malloc(len + 1);

	if (!buf)
		abort();
	buf[0] = flags;
	memcpy(buf + 1, img, len);
	fuzz_seed(dir, name, buf, len + 1);
	free(buf);
}

void fb_put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
void fb_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
void fb_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

void fb_make_elf(uint8_t *img, bool elf32)
{
	const uint64_t paddr = 16u << 20, filesz = 0x200, memsz = 0x1200, entry = paddr + 0x100;
	const uint32_t note_off = 0x100, seg_off = 0x1000;
	uint32_t descsz = elf32 ? 4 : 8;
	uint8_t *note = img + note_off;

	memset(img, 0, FB_ELF_SIZE);
	memcpy(img, ELFMAG, SELFMAG);
	img[EI_DATA] = ELFDATA2LSB;
	img[EI_VERSION] = EV_CURRENT;
	fb_put32(note, 4);          /* namesz */
	fb_put32(note + 4, descsz);
	fb_put32(note + 8, 18);     /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(note + 12, "Xen", 4);
	if (elf32)
		fb_put32(note + 16, (uint32_t)entry);
	else
		fb_put64(note + 16, entry);
	if (elf32) {
		Elf32_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
				  .e_entry = (uint32_t)entry, .e_phoff = sizeof(Elf32_Ehdr),
				  .e_ehsize = sizeof(Elf32_Ehdr), .e_phentsize = sizeof(Elf32_Phdr),
				  .e_phnum = 2 };
		Elf32_Phdr ph[2] = {
			{ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = seg_off,
			  .p_vaddr = (uint32_t)paddr, .p_paddr = (uint32_t)paddr,
			  .p_filesz = (uint32_t)filesz, .p_memsz = (uint32_t)memsz, .p_align = 0x1000 },
			{ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = note_off,
			  .p_filesz = 16 + descsz, .p_memsz = 16 + descsz, .p_align = 4 },
		};

		memcpy(eh.e_ident, img, EI_NIDENT);
		eh.e_ident[EI_CLASS] = ELFCLASS32;
		memcpy(img, &eh, sizeof(eh));
		memcpy(img + sizeof(eh), ph, sizeof(ph));
	} else {
		Elf64_Ehdr eh = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
				  .e_entry = entry, .e_phoff = sizeof(Elf64_Ehdr),
				  .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr),
				  .e_phnum = 2 };
		Elf64_Phdr ph[2] = {
			{ .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = seg_off,
			  .p_vaddr = paddr, .p_paddr = paddr, .p_filesz = filesz, .p_memsz = memsz,
			  .p_align = 0x1000 },
			{ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = note_off,
			  .p_filesz = 16 + descsz, .p_memsz = 16 + descsz, .p_align = 4 },
		};

		memcpy(eh.e_ident, img, EI_NIDENT);
		eh.e_ident[EI_CLASS] = ELFCLASS64;
		memcpy(img, &eh, sizeof(eh));
		memcpy(img + sizeof(eh), ph, sizeof(ph));
	}
	for (uint32_t i = seg_off; i < FB_ELF_SIZE; i++)
		img[i] = (uint8_t)(0x11 + i);
}
