/* x86 vCPU state: registers for each boot entry, CPUID, LAPIC, dumps. */
#ifndef KVMINI_CPU_X86_H
#define KVMINI_CPU_X86_H

#include <stdio.h>
#include <linux/kvm.h>

#include "kvmini/boot.h"
#include "kvmini/err.h"

/* Fetches KVM_GET_SUPPORTED_CPUID; the caller frees the result. */
int cpu_get_supported_cpuid(int kvm_fd, struct kvm_cpuid2 **out, struct kv_err *e) KV_MUST_CHECK;

/* --cpu: what the guest sees of the host's CPU. HOST passes KVM's
 * supported CPUID through; DEFAULT hides what a VMM nested in an emulated
 * or virtual machine cannot honour reliably: 5-level paging (LA57: guests
 * that use it crashed at random in a nested L1, under QEMU -cpu host as
 * well) and hardware virtualization (VMX, SVM: no nested guests). */
enum cpu_model { CPU_MODEL_DEFAULT, CPU_MODEL_HOST };

/* Copies @base into @out with the fixups a Linux guest needs for vCPU
 * @id of @ncpus: APIC IDs, topology leaves, hypervisor bit, and @model's
 * masks. */
void cpu_fixup_cpuid(const struct kvm_cpuid2 *base, struct kvm_cpuid2 *out,
		     unsigned id, unsigned ncpus, enum cpu_model model);

/* Sets CPUID, the MTRRs as firmware leaves them (enabled, write-back by
 * default: without them Linux turns PAT off), and LAPIC LINT0=ExtINT /
 * LINT1=NMI when @irqchip. */
int cpu_init_vcpu(int vcpu_fd, const struct kvm_cpuid2 *cpuid, bool irqchip,
		  struct kv_err *e) KV_MUST_CHECK;

/* Register state for a boot entry (long mode, 32-bit PVH, or real mode). */
int cpu_set_entry(int vcpu_fd, const struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;

/* Human-readable register dump for a crashed guest. */
void cpu_dump_regs(int vcpu_fd, FILE *f);

#endif
