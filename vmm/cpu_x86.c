/* x86 vCPU state: CPUID, LAPIC wiring, boot-entry registers, dumps. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <asm/kvm.h>

#include "kvmini/cpu_x86.h"
#include "kvmini/log.h"
#include "kvmini/layout.h"

#define CPUID_MAX_ENTRIES 256

int cpu_get_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out, struct kv_err *e)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) + CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	if (!c)
		return kv_err_set(e, -ENOMEM, "out of memory for CPUID");
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = errno;

		free(c);
		return kv_err_set(e, -err, "KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
	}
	*out = c;
	return 0;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

/* One package, @ncpus cores, one thread per core; APIC ID = vCPU index,
 * matching the ACPI MADT. */
static void fixup_entry(struct kvm_cpuid_entry2 *en, unsigned id, unsigned ncpus,
			enum cpu_model model)
{
	unsigned core_bits = bits_for(ncpus);

	if (model == CPU_MODEL_DEFAULT) {
		if (en->function == 1)
			en->ecx &= ~(1u << 5);          /* VMX */
		if (en->function == 7 && en->index == 0)
			en->ecx &= ~(1u << 16);         /* LA57: 5-level paging */
		if (en->function == 0x80000001)
			en->ecx &= ~(1u << 2);          /* SVM */
	}
	if (en->function == 1)
		en->edx |= 1u << 12;                    /* MTRR: kvmini sets them up */

	switch (en->function) {
	case 1:
		en->ebx = (en->ebx & 0x0000ffff) | (id << 24) | ((ncpus & 0xff) << 16);
		if (ncpus > 1)
			en->edx |= 1u << 28; /* HTT: EBX[23:16] is valid */
		en->ecx |= 1u << 31;         /* running under a hypervisor */
		break;
	case 4: /* Intel deterministic cache parameters: cores per package */
		if ((en->eax & 0x1f) == 0)
			break;
		en->eax = (en->eax & 0x3fff) | ((ncpus - 1) << 26);
		break;
	case 0xb: /* Intel extended topology */
	case 0x1f:
		if (en->index == 0) {
			en->eax = 0;
			en->ebx = 1;
			en->ecx = (1u << 8) | 0;
		} else if (en->index == 1) {
			en->eax = core_bits;
			en->ebx = ncpus;
			en->ecx = (2u << 8) | 1;
		} else {
			en->eax = en->ebx = 0;
			en->ecx = en->index;
		}
		en->edx = id;
		break;
	case 0x80000008: /* AMD: number of cores and APIC ID size */
		en->ecx = (en->ecx & ~0xf0ffu) | (core_bits << 12) | ((ncpus - 1) & 0xff);
		break;
	case 0x8000001e: /* AMD extended APIC ID, one thread per core */
		en->eax = id;
		en->ebx = (en->ebx & ~0xff00u) | id;
		en->ecx = 0;
		break;
	default:
		break;
	}
}

void cpu_fixup_cpuid(const struct kvm_cpuid2 *base, struct kvm_cpuid2 *out,
		     unsigned id, unsigned ncpus, enum cpu_model model)
{
	memcpy(out, base, sizeof(*base) + base->nent * sizeof(base->entries[0]));
	for (unsigned i = 0; i < out->nent; i++)
		fixup_entry(&out->entries[i], id, ncpus, model);
}

#define MSR_MTRR_DEF_TYPE 0x2ff
#define MTRR_DEF_ENABLE   (1u << 11)
#define MTRR_TYPE_WB      6

/* All of RAM write-back, as firmware leaves it; the fixed ranges
 * (all zero: uncached) are left off. */
static void set_mtrrs(int vcpu_fd)
{
	/* struct kvm_msrs ends in a flexible array: lay the one entry out
	 * behind it by hand rather than nest the struct (a GNU extension). */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs;

	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = 1;
	msrs.hdr.entries[0].index = MSR_MTRR_DEF_TYPE;
	msrs.hdr.entries[0].data = MTRR_DEF_ENABLE | MTRR_TYPE_WB;
	/* A KVM without the MTRR MSRs (kvm_pvm) only costs the guest PAT. */
	if (ioctl(vcpu_fd, KVM_SET_MSRS, &msrs) != 1)
		LOG_DEBUG("KVM did not take the MTRR default type: the guest runs without PAT");
}

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_delivery(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

int cpu_init_vcpu(int vcpu_fd, const struct kvm_cpuid2 *cpuid, bool irqchip, struct kv_err *e)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) < 0)
		return kv_err_set(e, -errno, "KVM_SET_CPUID2: %s", strerror(errno));
	set_mtrrs(vcpu_fd);
	if (!irqchip)
		return 0;
	/* Like a PC firmware: LINT0 carries the 8259's ExtINT, LINT1 NMI. */
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
		return kv_err_set(e, -errno, "KVM_GET_LAPIC: %s", strerror(errno));
	lapic_set_delivery(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_delivery(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
		return kv_err_set(e, -errno, "KVM_SET_LAPIC: %s", strerror(errno));
	return 0;
}

static struct kvm_segment flat_segment(uint16_t sel, uint8_t type, bool code64, bool big)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = big, .s = 1, .l = code64, .g = 1,
	};
}

static void set_protected_segments(struct kvm_sregs *s, bool long_mode)
{
	struct kvm_segment data = flat_segment(GDT_SEL_DATA, 0x3, false, true);

	s->cs = long_mode ? flat_segment(GDT_SEL_CODE64, 0xb, true, false)
			  : flat_segment(GDT_SEL_CODE32, 0xb, false, true);
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct kvm_segment){
		.base = 0, .limit = 0x67, .selector = GDT_SEL_TSS, .type = 0xb, .present = 1,
	};
	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = GDT_ENTRIES * 8 - 1;
	s->idt.base = LAYOUT_IDT;
	s->idt.limit = 0;
}

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

int cpu_set_entry(int vcpu_fd, const struct boot_entry *entry, struct kv_err *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		return kv_err_set(e, -errno, "KVM_GET_SREGS: %s", strerror(errno));
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2; /* reserved bit; interrupts off */
	regs.rip = entry->rip;

	switch (entry->kind) {
	case ENTRY_LINUX64:
		set_protected_segments(&sregs, true);
		sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
		sregs.cr3 = LAYOUT_PML4;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
		regs.rsi = entry->boot_info;
		regs.rsp = regs.rbp = LAYOUT_PVH_START_INFO - 0x10; /* unused low page */
		break;
	case ENTRY_PVH32:
		set_protected_segments(&sregs, false);
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr3 = 0;
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = entry->boot_info;
		break;
	case ENTRY_REAL16:
		/* Reset state from KVM, with CS at segment 0 so IP = rip. */
		sregs.cs.selector = 0;
		sregs.cs.base = 0;
		if (entry->rip > 0xffff)
			return kv_err_set(e, -EINVAL, "real-mode entry 0x%llx above 64 KiB",
					  (unsigned long long)entry->rip);
		break;
	default:
		return kv_err_set(e, -EINVAL, "unknown boot entry kind %d", entry->kind);
	}
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		return kv_err_set(e, -errno, "KVM_SET_SREGS: %s", strerror(errno));
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return kv_err_set(e, -errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

static void dump_segment(FILE *f, const char *name, const struct kvm_segment *s)
{
	fprintf(f, "%-3s=%04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u s=%u l=%u g=%u\r\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type,
		s->present, s->dpl, s->db, s->s, s->l, s->g);
}

void cpu_dump_regs(int vcpu_fd, FILE *f)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "(registers unavailable: %s)\r\n", strerror(errno));
		return;
	}
	fprintf(f, "RIP=%016llx RSP=%016llx RFLAGS=%016llx\r\n",
		(unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags);
	fprintf(f, "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\r\n",
		(unsigned long long)r.rax, (unsigned long long)r.rbx,
		(unsigned long long)r.rcx, (unsigned long long)r.rdx);
	fprintf(f, "RSI=%016llx RDI=%016llx RBP=%016llx R8 =%016llx\r\n",
		(unsigned long long)r.rsi, (unsigned long long)r.rdi,
		(unsigned long long)r.rbp, (unsigned long long)r.r8);
	fprintf(f, "R9 =%016llx R10=%016llx R11=%016llx R12=%016llx\r\n",
		(unsigned long long)r.r9, (unsigned long long)r.r10,
		(unsigned long long)r.r11, (unsigned long long)r.r12);
	fprintf(f, "R13=%016llx R14=%016llx R15=%016llx\r\n",
		(unsigned long long)r.r13, (unsigned long long)r.r14, (unsigned long long)r.r15);
	fprintf(f, "CR0=%016llx CR2=%016llx CR3=%016llx CR4=%016llx EFER=%016llx\r\n",
		(unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
		(unsigned long long)s.cr4, (unsigned long long)s.efer);
	dump_segment(f, "CS", &s.cs);
	dump_segment(f, "SS", &s.ss);
	dump_segment(f, "DS", &s.ds);
	dump_segment(f, "TR", &s.tr);
	fprintf(f, "GDT=%016llx/%04x IDT=%016llx/%04x\r\n",
		(unsigned long long)s.gdt.base, s.gdt.limit,
		(unsigned long long)s.idt.base, s.idt.limit);
}
