/* Fuzz target: the ELF/PVH loader (guest-boot/elf_pvh.c, libelf) through
 * boot_load, seeded with minimal 64- and 32-bit vmlinux files that carry
 * the PVH entry note (built here, nothing binary committed). */
#include "fuzz_boot.h"
#include "fuzz_common.h"

void fuzz_init(void)
{
	fuzz_boot_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_boot_run(data, size, BOOT_PVH);
	return 0;
}

void fuzz_write_seeds(const char *dir)
{
	static uint8_t img[FB_ELF_SIZE];

	fb_make_elf(img, false);
	fuzz_boot_seed(dir, "elf64_pvh", 3, img, sizeof(img));
	fuzz_boot_seed(dir, "elf64_auto_initrd", 4 | 0x10, img, sizeof(img));
	fb_make_elf(img, true);
	fuzz_boot_seed(dir, "elf32_pvh", 3, img, sizeof(img));
	fuzz_boot_seed(dir, "elf32_long_cmdline", 3 | 8, img, sizeof(img));
}
