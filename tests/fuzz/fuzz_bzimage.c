/* Fuzz target: the bzImage loader (guest-boot/bzimage.c) through
 * boot_load with BOOT_BZIMAGE, and with BOOT_PVH the host-side unpacking
 * of its XZ payload (guest-boot/unpack_xz.c) into a vmlinux. Seeds are
 * minimal valid bzImages built here: a boot-protocol 2.15 header and a
 * small protected-mode part, one of them carrying an XZ-compressed
 * minimal PVH vmlinux as its payload. */
#include <lzma.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_boot.h"
#include "fuzz_common.h"

#define SETUP_SECTS 4
#define PM_OFFSET ((SETUP_SECTS + 1) * 512)

void fuzz_init(void)
{
	fuzz_boot_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_boot_run(data, size, BOOT_BZIMAGE);
	return 0;
}

/* The header fields Linux's boot protocol asks a 64-bit loader to read. */
static size_t make_bzimage(uint8_t *img, size_t pm_size, const uint8_t *payload,
			   size_t payload_len)
{
	size_t size = PM_OFFSET + pm_size;

	memset(img, 0, size);
	for (size_t i = PM_OFFSET; i < size; i++)
		img[i] = (uint8_t)(0x5a ^ i);
	img[0x1f1] = SETUP_SECTS;
	fb_put32(img + 0x1f4, (uint32_t)(pm_size / 16));  /* syssize */
	fb_put16(img + 0x1fe, 0xaa55);
	img[0x200] = 0xeb;                                 /* jmp short */
	img[0x201] = 0x6a;                                 /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	fb_put16(img + 0x206, 0x020f);
	img[0x211] = 0x01;                                 /* LOADED_HIGH */
	fb_put32(img + 0x22c, 0x7fffffff);                 /* initrd_addr_max */
	fb_put32(img + 0x230, 2u << 20);                   /* kernel_alignment */
	img[0x234] = 1;                                    /* relocatable */
	fb_put16(img + 0x236, 0x7f);                       /* xloadflags */
	fb_put32(img + 0x238, 255);                        /* cmdline_size */
	fb_put64(img + 0x258, 16u << 20);                  /* pref_address */
	fb_put32(img + 0x260, 8u << 20);                   /* init_size */
	if (payload) {
		memcpy(img + PM_OFFSET + 0x200, payload, payload_len);
		fb_put32(img + 0x248, 0x200);
		fb_put32(img + 0x24c, (uint32_t)payload_len);
	}
	return size;
}

void fuzz_write_seeds(const char *dir)
{
	static uint8_t img[PM_OFFSET + 0x2000], elf[FB_ELF_SIZE], xz[0x1000];
	size_t len = make_bzimage(img, 0x400, NULL, 0), xz_len = 0;

	fuzz_boot_seed(dir, "bzimage", 3, img, len);
	fuzz_boot_seed(dir, "bzimage_initrd_2cpus", 3 | 4 | 0x10, img, len);
	fuzz_boot_seed(dir, "bzimage_long_cmdline", 3 | 8, img, len);

	/* Kbuild's payload: XZ (CRC32 check) with the vmlinux size appended. */
	fb_make_elf(elf, false);
	if (lzma_easy_buffer_encode(0, LZMA_CHECK_CRC32, NULL, elf, sizeof(elf), xz, &xz_len,
				    sizeof(xz) - 4) != LZMA_OK)
		abort();
	fb_put32(xz + xz_len, (uint32_t)sizeof(elf));
	xz_len += 4;
	len = make_bzimage(img, (0x200 + xz_len + 15) & ~(size_t)15, xz, xz_len);
	fuzz_boot_seed(dir, "bzimage_xz_pvh", 2, img, len);
}
