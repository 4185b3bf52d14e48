/* The CPU tables a directly booted kernel starts with: a flat GDT, an
 * empty IDT and, for the 64-bit entry, an identity map of the first
 * 4 GiB, all at fixed addresses from layout.h. */
#include <errno.h>
#include <string.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"

#define PTE_PRESENT  (1ULL << 0)
#define PTE_WRITABLE (1ULL << 1)
#define PTE_PS       (1ULL << 7) /* 2 MiB page in a PD entry */

#define PT_ENTRIES   512
#define IDENTITY_PDS 4           /* 4 x 1 GiB */
#define PT_SIZE      4096ULL

/* Selector index -> descriptor. The TSS is a busy 32-bit TSS with byte
 * granularity (limit 0x67, the architectural minimum): KVM wants a valid
 * TR, and no code here ever switches tasks through it. */
static const uint64_t boot_gdt[GDT_ENTRIES] = {
	[0] = 0,
	[1] = 0,
	[GDT_SEL_CODE64 / 8] = 0x00af9b000000ffffULL, /* L=1, DPL 0, exec/read */
	[GDT_SEL_DATA / 8]   = 0x00cf93000000ffffULL, /* 4 GiB flat, read/write */
	[GDT_SEL_TSS / 8]    = 0x00008b0000000067ULL, /* busy 32-bit TSS at 0 */
	[GDT_SEL_CODE32 / 8] = 0x00cf9b000000ffffULL, /* 4 GiB flat, D=1 */
};

_Static_assert(GDT_SEL_CODE32 / 8 < GDT_ENTRIES, "GDT_ENTRIES too small");
_Static_assert(LAYOUT_GDT + sizeof(boot_gdt) <= LAYOUT_IDT, "GDT overlaps the IDT");

static int write_identity_map(const struct guest_mem *gm)
{
	uint64_t table[PT_ENTRIES];
	int r;

	memset(table, 0, sizeof(table));
	table[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_WRITABLE;
	r = gm_write(gm, LAYOUT_PML4, table, sizeof(table));
	if (r)
		return r;

	memset(table, 0, sizeof(table));
	for (unsigned i = 0; i < IDENTITY_PDS; i++)
		table[i] = (LAYOUT_PD + i * PT_SIZE) | PTE_PRESENT | PTE_WRITABLE;
	r = gm_write(gm, LAYOUT_PDPT, table, sizeof(table));
	if (r)
		return r;

	for (unsigned pd = 0; pd < IDENTITY_PDS; pd++) {
		for (unsigned i = 0; i < PT_ENTRIES; i++) {
			uint64_t addr = ((uint64_t)pd * PT_ENTRIES + i) * 2 * MiB;

			table[i] = addr | PTE_PRESENT | PTE_WRITABLE | PTE_PS;
		}
		r = gm_write(gm, LAYOUT_PD + pd * PT_SIZE, table, sizeof(table));
		if (r)
			return r;
	}
	return 0;
}

int boot_write_x86_tables(const struct guest_mem *gm, enum boot_entry_kind kind)
{
	const uint64_t empty_idt = 0;
	int r;

	r = gm_write(gm, LAYOUT_GDT, boot_gdt, sizeof(boot_gdt));
	if (r)
		return r;
	r = gm_write(gm, LAYOUT_IDT, &empty_idt, sizeof(empty_idt));
	if (r)
		return r;
	/* The PVH entry runs with paging off: no page tables. */
	if (kind == ENTRY_LINUX64)
		return write_identity_map(gm);
	return 0;
}
