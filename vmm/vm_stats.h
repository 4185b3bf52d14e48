/* Private to vmm/: KVM's statistics for this VM (vmm/vm_stats.c). */
#ifndef KVMINI_VMM_VM_STATS_H
#define KVMINI_VMM_VM_STATS_H

#include "kvmini/err.h"

struct vm;

/* Init step, after the vCPUs: opens the VM's and every vCPU's stats fd
 * and allocates what vm_stats_collect fills. Never fails the VM: a KVM
 * without binary statistics leaves the report's kvm fields null. */
int vm_stats_init(struct vm *vm, struct kv_err *e);
void vm_stats_fini(struct vm *vm);

#endif
