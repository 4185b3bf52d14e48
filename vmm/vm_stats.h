/* Private to vmm/: KVM's statistics for this VM (vmm/vm_stats.c). */
#ifndef KVMINI_VMM_VM_STATS_H
#define KVMINI_VMM_VM_STATS_H

#include "kvmini/err.h"

struct vm;

/* Init step, after the vCPUs: with cfg.kvm_stats, allocates what
 * vm_stats_collect fills (the stats fds are opened only then, after the
 * VM stopped: starting a VM costs nothing for them). */
int vm_stats_init(struct vm *vm, struct kv_err *e);
void vm_stats_fini(struct vm *vm);

#endif
