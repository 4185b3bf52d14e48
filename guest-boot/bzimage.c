/* bzImage loading with the Linux x86 boot protocol (Documentation/
 * x86/boot.rst), 64-bit entry: the protected-mode kernel goes to its
 * load address, the zero page describes memory, command line and initrd,
 * and the vCPU starts at load address + 0x200 in long mode. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "bzimage.h"
#include "elf_pvh.h"

#define BZ_BOOT_FLAG     0xaa55
#define BZ_HDRS          0x53726448u /* "HdrS" little-endian */
#define BZ_HDR_START     0x1f1
#define BZ_MIN_FILE      1024        /* boot sector + at least one setup sector */
#define BZ_ENTRY_64      0x200       /* 64-bit entry: load address + 0x200 */

#define LOADFLAG_CAN_USE_HEAP 0x80
#define LOADER_UNDEFINED      0xff   /* type_of_loader for loaders with no id */
#define HEAP_END_PTR          0xfe00 /* like other VMMs: heap up to 0xfe00 */
#define VID_MODE_NORMAL       0xffff
#define ZP_E820_MAX           128    /* e820_table entries in the zero page */

/* The setup header as it sits in the file and in the zero page. */
struct setup_header {
	uint8_t setup_sects;          /* 0x1f1 */
	uint16_t root_flags;
	uint32_t syssize;             /* 0x1f4: protected-mode size / 16 */
	uint16_t ram_size;
	uint16_t vid_mode;            /* 0x1fa */
	uint16_t root_dev;
	uint16_t boot_flag;           /* 0x1fe */
	uint16_t jump;                /* 0x200: byte 0x201 gives the header end */
	uint32_t header;              /* 0x202 */
	uint16_t version;             /* 0x206 */
	uint32_t realmode_swtch;
	uint16_t start_sys_seg;
	uint16_t kernel_version;
	uint8_t type_of_loader;       /* 0x210 */
	uint8_t loadflags;            /* 0x211 */
	uint16_t setup_move_size;
	uint32_t code32_start;
	uint32_t ramdisk_image;       /* 0x218 */
	uint32_t ramdisk_size;        /* 0x21c */
	uint32_t bootsect_kludge;
	uint16_t heap_end_ptr;        /* 0x224 */
	uint8_t ext_loader_ver;
	uint8_t ext_loader_type;
	uint32_t cmd_line_ptr;        /* 0x228 */
	uint32_t initrd_addr_max;     /* 0x22c */
	uint32_t kernel_alignment;    /* 0x230 */
	uint8_t relocatable_kernel;   /* 0x234 */
	uint8_t min_alignment;
	uint16_t xloadflags;          /* 0x236 */
	uint32_t cmdline_size;        /* 0x238 */
	uint32_t hardware_subarch;
	uint64_t hardware_subarch_data;
	uint32_t payload_offset;      /* 0x248 */
	uint32_t payload_length;      /* 0x24c */
	uint64_t setup_data;
	uint64_t pref_address;        /* 0x258 */
	uint32_t init_size;           /* 0x260 */
	uint32_t handover_offset;
	uint32_t kernel_info_offset;  /* 0x268 */
} __attribute__((packed));

struct zp_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* struct boot_params, "the zero page": only the fields kvmini sets. */
struct boot_params {
	uint8_t pad0[0x70];
	uint64_t acpi_rsdp_addr;      /* 0x070: spares the kernel its BIOS-area scan */
	uint8_t pad0b[0xc0 - 0x78];
	uint32_t ext_ramdisk_image;   /* 0x0c0 */
	uint32_t ext_ramdisk_size;    /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;    /* 0x0c8 */
	uint8_t pad1[0x1e8 - 0xcc];
	uint8_t e820_entries;         /* 0x1e8 */
	uint8_t pad2[BZ_HDR_START - 0x1e9];
	struct setup_header hdr;      /* 0x1f1 */
	uint8_t pad3[0x2d0 - 0x26c];
	struct zp_e820 e820_table[ZP_E820_MAX]; /* 0x2d0 */
	uint8_t pad4[0x1000 - 0xcd0];
} __attribute__((packed));

_Static_assert(offsetof(struct boot_params, acpi_rsdp_addr) == 0x070, "zero page layout");
_Static_assert(offsetof(struct boot_params, ext_ramdisk_image) == 0x0c0, "zero page layout");
_Static_assert(offsetof(struct boot_params, e820_entries) == 0x1e8, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr) == BZ_HDR_START, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr.header) == 0x202, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr.cmd_line_ptr) == 0x228, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr.payload_offset) == 0x248, "zero page layout");
_Static_assert(offsetof(struct boot_params, hdr.pref_address) == 0x258, "zero page layout");
_Static_assert(offsetof(struct boot_params, e820_table) == 0x2d0, "zero page layout");
_Static_assert(sizeof(struct boot_params) == 4096, "zero page size");
_Static_assert(E820_MAX <= ZP_E820_MAX, "e820 map larger than the zero page's");

bool bz_looks_like(const struct boot_file *f)
{
	uint32_t magic;
	uint16_t flag;

	if (f->head_len < 0x206)
		return false;
	memcpy(&magic, f->head + 0x202, sizeof(magic));
	memcpy(&flag, f->head + 0x1fe, sizeof(flag));
	return magic == BZ_HDRS || flag == BZ_BOOT_FLAG;
}

static int bz_check_magic(const struct boot_file *f, const struct setup_header *h,
			  struct kv_err *e)
{
	if (h->boot_flag != BZ_BOOT_FLAG)
		return kv_err_set(e, -EINVAL, "%s: bad boot_flag 0x%04x at 0x1fe (expected 0xaa55): "
				  "not a bzImage", f->path, h->boot_flag);
	if (h->header != BZ_HDRS)
		return kv_err_set(e, -EINVAL, "%s: no \"HdrS\" setup header at 0x202: not a bzImage",
				  f->path);
	if (h->version < BZ_MIN_VERSION)
		return kv_err_set(e, -EINVAL, "%s: boot protocol %u.%u too old, need 2.12 "
				  "(Linux 3.8 or later)", f->path, h->version >> 8, h->version & 0xff);
	return 0;
}

int bz_parse(const struct boot_file *f, struct bz_info *bz, struct kv_err *e)
{
	struct setup_header h;
	uint64_t pm_end;
	int r;

	_Static_assert(BZ_MIN_FILE <= BOOT_HEAD_MAX, "the setup header lies in the file's head");
	if (f->size < BZ_MIN_FILE || f->head_len < BZ_MIN_FILE)
		return kv_err_set(e, -EINVAL, "%s: truncated: %llu bytes is too small for a bzImage",
				  f->path, (unsigned long long)f->size);
	memcpy(&h, f->head + BZ_HDR_START, sizeof(h));
	r = bz_check_magic(f, &h, e);
	if (r)
		return r;

	memset(bz, 0, sizeof(*bz));
	bz->setup_sects = h.setup_sects ? h.setup_sects : 4; /* 0 means 4 */
	bz->version = h.version;
	bz->loadflags = h.loadflags;
	bz->relocatable = h.relocatable_kernel;
	bz->xloadflags = h.xloadflags;
	bz->syssize = h.syssize;
	bz->initrd_addr_max = h.initrd_addr_max;
	bz->kernel_alignment = h.kernel_alignment;
	bz->cmdline_size = h.cmdline_size;
	bz->payload_offset = h.payload_offset;
	bz->payload_length = h.payload_length;
	bz->pref_address = h.pref_address;
	bz->init_size = h.init_size;
	bz->pm_offset = ((size_t)bz->setup_sects + 1) * 512;
	bz->pm_size = (size_t)h.syssize * 16;

	if (bz->pm_offset >= f->size)
		return kv_err_set(e, -EINVAL, "%s: truncated: the setup code needs %zu bytes, "
				  "the file has %llu", f->path, bz->pm_offset,
				  (unsigned long long)f->size);
	if (h.syssize == 0)
		return kv_err_set(e, -EINVAL, "%s: no protected-mode kernel (syssize is 0)", f->path);
	pm_end = (uint64_t)bz->pm_offset + bz->pm_size;
	if (pm_end > f->size)
		return kv_err_set(e, -EINVAL, "%s: truncated: the protected-mode kernel needs "
				  "%llu bytes, the file has %llu", f->path,
				  (unsigned long long)pm_end, (unsigned long long)f->size);
	return 0;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Loads at pref_address when it is usable (>= 1 MiB and aligned): that
 * is where the kernel was linked and it then has nothing to relocate.
 * Otherwise a relocatable kernel goes to LAYOUT_KERNEL_LOAD rounded up
 * to kernel_alignment. */
static int bz_choose_load(const struct boot_file *f, const struct bz_info *bz,
			  uint64_t *load, struct kv_err *e)
{
	uint64_t align = bz->kernel_alignment;
	bool aligned = !align || (is_pow2(align) && bz->pref_address % align == 0);

	if (bz->pref_address >= LAYOUT_HIGHMEM_START && aligned &&
	    bz->pref_address < LAYOUT_MMIO_HOLE_START) {
		*load = bz->pref_address;
		return 0;
	}
	if (bz->relocatable && (!align || is_pow2(align))) {
		*load = align ? (LAYOUT_KERNEL_LOAD + align - 1) & ~(align - 1) : LAYOUT_KERNEL_LOAD;
		return 0;
	}
	return kv_err_set(e, -EINVAL, "%s: kernel is not relocatable and its pref_address 0x%llx "
			  "(alignment 0x%llx) is not usable", f->path,
			  (unsigned long long)bz->pref_address, (unsigned long long)align);
}

/* The zero page: the file's setup header, then what the loader fills. */
static int bz_write_zero_page(const struct guest_mem *gm, const struct boot_file *f,
			      const struct boot_initrd *initrd, struct kv_err *e)
{
	struct boot_params bp;
	struct e820_entry map[E820_MAX];
	size_t hdr_end = 0x202 + (size_t)f->head[0x201]; /* bz_parse: head_len >= 1024 */
	int n;

	memset(&bp, 0, sizeof(bp));

	/* Copy exactly the header the kernel declares, never past our struct. */
	if (hdr_end > BZ_HDR_START + sizeof(bp.hdr))
		hdr_end = BZ_HDR_START + sizeof(bp.hdr);
	memcpy((uint8_t *)&bp + BZ_HDR_START, f->head + BZ_HDR_START, hdr_end - BZ_HDR_START);

	bp.hdr.type_of_loader = LOADER_UNDEFINED;
	bp.hdr.loadflags |= LOADFLAG_CAN_USE_HEAP;
	bp.hdr.heap_end_ptr = HEAP_END_PTR;
	bp.hdr.vid_mode = VID_MODE_NORMAL;
	bp.hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp.ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	bp.hdr.ramdisk_image = (uint32_t)initrd->addr;
	bp.hdr.ramdisk_size = (uint32_t)initrd->size;
	bp.ext_ramdisk_image = (uint32_t)(initrd->addr >> 32);
	bp.ext_ramdisk_size = (uint32_t)(initrd->size >> 32);
	bp.acpi_rsdp_addr = LAYOUT_ACPI_RSDP;

	n = boot_build_e820(gm, map, E820_MAX);
	if (n < 0)
		return kv_err_set(e, n, "cannot build the e820 memory map");
	bp.e820_entries = (uint8_t)n;
	for (int i = 0; i < n; i++)
		bp.e820_table[i] = (struct zp_e820){ map[i].addr, map[i].size, map[i].type };

	if (gm_write(gm, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)))
		return kv_err_set(e, -EFAULT, "guest memory does not cover the zero page");
	return 0;
}

static int bz_load_initrd(const struct guest_mem *gm, const struct boot_cfg *cfg,
			  const struct bz_info *bz, struct boot_range kernel,
			  struct boot_initrd *initrd, struct kv_err *e)
{
	uint64_t ceil = gm_low_top(gm);

	memset(initrd, 0, sizeof(*initrd));
	if (!cfg->initrd_path && !cfg->initrd_extra_len)
		return 0;
	/* initrd_addr_max is the highest address the initrd may occupy. */
	if ((uint64_t)bz->initrd_addr_max + 1 < ceil)
		ceil = (uint64_t)bz->initrd_addr_max + 1;
	return boot_initrd_load(gm, cfg->initrd_path, cfg->initrd_extra, cfg->initrd_extra_len,
				ceil, &kernel, 1, initrd, e);
}

int bz_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	    struct boot_file *f, struct boot_entry *entry, struct kv_err *e)
{
	struct boot_initrd initrd;
	struct bz_info bz;
	uint64_t load = 0, need, end;
	int r;

	r = bz_parse(f, &bz, e);
	if (r)
		return r;
	if (!(bz.xloadflags & XLF_KERNEL_64))
		return kv_err_set(e, -EINVAL, "%s: no 64-bit entry point (XLF_KERNEL_64 not set in "
				  "xloadflags 0x%x): kvmini boots 64-bit kernels only",
				  f->path, bz.xloadflags);
	r = bz_choose_load(f, &bz, &load, e);
	if (r)
		return r;
	/* init_size covers the image, its decompression and early heap. */
	need = bz.init_size > bz.pm_size ? bz.init_size : bz.pm_size;
	end = load + need;
	if (end > gm_low_top(gm) || !gm_ptr(gm, load, need))
		return kv_err_set(e, -ENOMEM, "%s: kernel needs %llu MiB from 0x%llx (up to %llu MiB), "
				  "guest has only %llu MiB: raise --memory", f->path,
				  (unsigned long long)((need + MiB - 1) / MiB),
				  (unsigned long long)load,
				  (unsigned long long)((end + MiB - 1) / MiB),
				  (unsigned long long)(gm->ram_size / MiB));
	r = boot_cmdline_write(gm, cfg->cmdline, bz.cmdline_size, f->path, e);
	if (r)
		return r;
	r = bz_load_initrd(gm, cfg, &bz, (struct boot_range){ load, end }, &initrd, e);
	if (r)
		return r;
	/* Read from the file straight into guest RAM (checked above). */
	r = boot_file_copy(f, bz.pm_offset, gm_ptr(gm, load, bz.pm_size), bz.pm_size,
			   "the protected-mode kernel", e);
	if (r)
		return r;
	r = bz_write_zero_page(gm, f, &initrd, e);
	if (r)
		return r;
	entry->kind = ENTRY_LINUX64;
	entry->rip = load + BZ_ENTRY_64;
	entry->boot_info = LAYOUT_ZERO_PAGE;
	return 0;
}
