/* ELF vmlinux loading through the PVH entry (the Xen ELF note
 * XEN_ELFNOTE_PHYS32_ENTRY): PT_LOAD segments at their physical
 * addresses, then struct hvm_start_info for the 32-bit entry. Every
 * program header is checked before a byte is copied. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "elf_pvh.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PVH_START_MAGIC          0x336ec578u
#define PVH_MAX_LOAD             32 /* PT_LOAD segments; vmlinux has about 5 */

/* xen/include/public/arch-x86/hvm/start_info.h, version 1. */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry layout");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap layout");
_Static_assert(LAYOUT_PVH_START_INFO + sizeof(struct hvm_start_info) <= LAYOUT_PVH_MODLIST,
	       "start info overlaps the module list");
_Static_assert(LAYOUT_PVH_MODLIST + sizeof(struct hvm_modlist_entry) <= LAYOUT_PVH_MEMMAP,
	       "module list overlaps the memory map");
_Static_assert(LAYOUT_PVH_MEMMAP + E820_MAX * sizeof(struct hvm_memmap_table_entry) <=
	       LAYOUT_ZERO_PAGE, "PVH memory map overlaps the zero page");

/* What the checks found, for the copy and the initrd placement. */
struct pvh_image {
	uint32_t entry;
	unsigned nload;
	GElf_Phdr load[PVH_MAX_LOAD];
	struct boot_range busy[PVH_MAX_LOAD];
};

bool pvh_looks_like(const struct boot_file *f)
{
	return f->head_len >= SELFMAG && memcmp(f->head, ELFMAG, SELFMAG) == 0;
}

static int elf_open(const struct boot_file *f, const char *what, Elf **out, struct kv_err *e)
{
	GElf_Ehdr eh;
	Elf *elf;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return kv_err_set(e, -EINVAL, "libelf: %s", elf_errmsg(-1));
	/* A file is read by libelf as it needs (headers, notes), not whole;
	 * the segments are then read straight into guest RAM. */
	elf = f->fd >= 0 ? elf_begin(f->fd, ELF_C_READ, NULL) : elf_memory((char *)f->data, f->size);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		elf_end(elf);
		return kv_err_set(e, -EINVAL, "%s: bad or truncated ELF header", what);
	}
	*out = elf;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 && eh.e_ident[EI_CLASS] != ELFCLASS32)
		return kv_err_set(e, -EINVAL, "%s: unknown ELF class %u", what, eh.e_ident[EI_CLASS]);
	if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return kv_err_set(e, -EINVAL, "%s: not a little-endian ELF file", what);
	if (eh.e_machine != EM_X86_64 && eh.e_machine != EM_386)
		return kv_err_set(e, -EINVAL, "%s: ELF machine %u is not x86", what, eh.e_machine);
	if (eh.e_type != ET_EXEC)
		return kv_err_set(e, -EINVAL, "%s: ELF type %u is not an executable (ET_EXEC)",
				  what, eh.e_type);
	return 0;
}

/* Looks for the PVH note in one block of notes; 1 when found. */
static int note_scan(Elf_Data *d, uint32_t *entry)
{
	GElf_Nhdr nh;
	size_t off = 0, name_off, desc_off, next;
	const uint8_t *buf;

	if (!d || !d->d_buf)
		return 0;
	buf = d->d_buf;
	while ((next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
		off = next;
		if (nh.n_type != XEN_ELFNOTE_PHYS32_ENTRY || nh.n_namesz != 4 ||
		    memcmp(buf + name_off, "Xen", 4) != 0)
			continue;
		/* Linux emits a 64-bit value on x86_64, 32-bit on i386. */
		if (nh.n_descsz == 8) {
			uint64_t v;

			memcpy(&v, buf + desc_off, 8);
			if (v > UINT32_MAX || v == 0)
				return -1;
			*entry = (uint32_t)v;
		} else if (nh.n_descsz == 4) {
			memcpy(entry, buf + desc_off, 4);
		} else {
			return -1;
		}
		return 1;
	}
	return 0;
}

static int find_pvh_note(Elf *elf, const struct boot_file *f, const char *what,
			 uint32_t *entry, struct kv_err *e)
{
	Elf_Scn *scn = NULL;
	size_t phnum = 0;
	int found = 0;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return kv_err_set(e, -EINVAL, "%s: bad ELF program header table", what);
	for (size_t i = 0; i < phnum && !found; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return kv_err_set(e, -EINVAL, "%s: bad ELF program header %zu", what, i);
		if (ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > f->size || ph.p_filesz > f->size - ph.p_offset)
			return kv_err_set(e, -EINVAL, "%s: note segment %zu lies past the end of the "
					  "file: truncated?", what, i);
		found = note_scan(elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
						       ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR),
				  entry);
	}
	/* Some linkers leave notes only in sections. */
	while (!found && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;

		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_NOTE)
			found = note_scan(elf_getdata(scn, NULL), entry);
	}
	if (found < 0)
		return kv_err_set(e, -EINVAL, "%s: malformed PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
				  what);
	if (!found)
		return kv_err_set(e, -EINVAL, "%s: ELF kernel has no PVH entry note "
				  "(XEN_ELFNOTE_PHYS32_ENTRY); build it with CONFIG_PVH=y or boot "
				  "the bzImage", what);
	return 0;
}

/* Checks one PT_LOAD: inside the file, inside guest RAM, above the
 * VMM's low-memory boot area. */
static int check_load(const struct guest_mem *gm, const struct boot_file *f, const char *what,
		      size_t i, const GElf_Phdr *ph, struct kv_err *e)
{
	uint64_t end;

	if (ph->p_filesz > ph->p_memsz)
		return kv_err_set(e, -EINVAL, "%s: segment %zu: file size 0x%llx exceeds memory "
				  "size 0x%llx", what, i, (unsigned long long)ph->p_filesz,
				  (unsigned long long)ph->p_memsz);
	if (ph->p_offset > f->size || ph->p_filesz > f->size - ph->p_offset)
		return kv_err_set(e, -EINVAL, "%s: segment %zu: bytes 0x%llx+0x%llx lie past the end "
				  "of the file (%llu bytes): truncated?", what, i,
				  (unsigned long long)ph->p_offset, (unsigned long long)ph->p_filesz,
				  (unsigned long long)f->size);
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end))
		return kv_err_set(e, -EINVAL, "%s: segment %zu: address 0x%llx + size 0x%llx "
				  "overflows", what, i, (unsigned long long)ph->p_paddr,
				  (unsigned long long)ph->p_memsz);
	if (ph->p_paddr < LAYOUT_HIGHMEM_START)
		return kv_err_set(e, -EINVAL, "%s: segment %zu at 0x%llx overlaps the boot area "
				  "below 1 MiB", what, i, (unsigned long long)ph->p_paddr);
	if (!gm_ptr(gm, ph->p_paddr, ph->p_memsz))
		return kv_err_set(e, -ENOMEM, "%s: segment %zu [0x%llx, 0x%llx) is outside guest RAM "
				  "(%llu MiB): raise --memory", what, i,
				  (unsigned long long)ph->p_paddr, (unsigned long long)end,
				  (unsigned long long)(gm->ram_size / MiB));
	return 0;
}

static int check_segments(Elf *elf, const struct guest_mem *gm, const struct boot_file *f,
			  const char *what, struct pvh_image *img, struct kv_err *e)
{
	bool entry_ok = false;
	size_t phnum;
	int r;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return kv_err_set(e, -EINVAL, "%s: bad ELF program header table", what);
	img->nload = 0;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			return kv_err_set(e, -EINVAL, "%s: bad ELF program header %zu", what, i);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		r = check_load(gm, f, what, i, &ph, e);
		if (r)
			return r;
		if (img->nload == PVH_MAX_LOAD)
			return kv_err_set(e, -EINVAL, "%s: more than %d loadable segments", what,
					  PVH_MAX_LOAD);
		img->load[img->nload] = ph;
		img->busy[img->nload] = (struct boot_range){ ph.p_paddr, ph.p_paddr + ph.p_memsz };
		if (img->entry >= ph.p_paddr && img->entry < ph.p_paddr + ph.p_filesz)
			entry_ok = true;
		img->nload++;
	}
	if (!img->nload)
		return kv_err_set(e, -EINVAL, "%s: no loadable (PT_LOAD) segments", what);
	if (!entry_ok)
		return kv_err_set(e, -EINVAL, "%s: PVH entry 0x%x lies in no loaded segment", what,
				  img->entry);
	return 0;
}

/* Reads each segment from the file straight into guest RAM (a copy:
 * the guest's memory never depends on the file afterwards; its zeros are
 * not copied, guest RAM starts zeroed) and zeroes its bss. */
static int copy_segments(const struct guest_mem *gm, struct boot_file *f,
			 const struct pvh_image *img, struct kv_err *e)
{
	for (unsigned i = 0; i < img->nload; i++) {
		const GElf_Phdr *ph = &img->load[i];
		uint8_t *dst = gm_ptr(gm, ph->p_paddr, ph->p_memsz); /* checked above */
		int r = boot_file_copy_to_zeroed(f, ph->p_offset, dst, ph->p_filesz,
						 "a loadable segment", e);

		if (r)
			return r;
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz); /* bss */
	}
	return 0;
}

static int write_start_info(const struct guest_mem *gm, const struct boot_initrd *initrd,
			    struct kv_err *e)
{
	struct hvm_memmap_table_entry mm[E820_MAX];
	struct e820_entry map[E820_MAX];
	struct hvm_start_info si = {
		.magic = PVH_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = LAYOUT_ACPI_RSDP,
		.memmap_paddr = LAYOUT_PVH_MEMMAP,
	};
	int n = boot_build_e820(gm, map, E820_MAX);

	if (n < 0)
		return kv_err_set(e, n, "cannot build the PVH memory map");
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	si.memmap_entries = (uint32_t)n;
	if (initrd->size) {
		struct hvm_modlist_entry mod = { .paddr = initrd->addr, .size = initrd->size };

		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_MODLIST;
		if (gm_write(gm, LAYOUT_PVH_MODLIST, &mod, sizeof(mod)))
			return kv_err_set(e, -EFAULT, "guest memory does not cover the PVH module list");
	}
	if (gm_write(gm, LAYOUT_PVH_MEMMAP, mm, (size_t)n * sizeof(mm[0])) ||
	    gm_write(gm, LAYOUT_PVH_START_INFO, &si, sizeof(si)))
		return kv_err_set(e, -EFAULT, "guest memory does not cover the PVH start info");
	return 0;
}

int pvh_find_entry(const struct boot_file *f, const char *what, uint32_t *entry,
		   struct kv_err *e)
{
	Elf *elf = NULL;
	int r = elf_open(f, what, &elf, e);

	if (!r)
		r = find_pvh_note(elf, f, what, entry, e);
	elf_end(elf);
	return r;
}

/* Parse, then act: every header and the note are checked before
 * anything is written to guest memory. */
int pvh_load(const struct guest_mem *gm, const struct boot_cfg *cfg,
	     struct boot_file *f, const char *what, uint64_t cmdline_max,
	     struct boot_entry *entry, struct kv_err *e)
{
	struct pvh_image img; /* about 2 KiB */
	struct boot_initrd initrd = { 0, 0 };
	Elf *elf = NULL;
	int r;

	memset(&img, 0, sizeof(img));
	r = elf_open(f, what, &elf, e);
	if (!r)
		r = find_pvh_note(elf, f, what, &img.entry, e);
	if (!r)
		r = check_segments(elf, gm, f, what, &img, e);
	elf_end(elf);
	if (r)
		return r;
	r = boot_cmdline_write(gm, cfg->cmdline, cmdline_max, what, e);
	if (r)
		return r;
	if (cfg->initrd_path || cfg->initrd_extra_len) {
		r = boot_initrd_load(gm, cfg->initrd_path, cfg->initrd_extra, cfg->initrd_extra_len,
				     gm_low_top(gm), img.busy, img.nload,
				     &initrd, e);
		if (r)
			return r;
	}
	r = copy_segments(gm, f, &img, e);
	if (!r)
		r = write_start_info(gm, &initrd, e);
	if (r)
		return r;
	entry->kind = ENTRY_PVH32;
	entry->rip = img.entry;
	entry->boot_info = LAYOUT_PVH_START_INFO;
	return 0;
}
