/* Private to vmm/: what vm.c's init table needs from vm_run.c. */
#ifndef KVMINI_VMM_VM_RUN_H
#define KVMINI_VMM_VM_RUN_H

struct vm;

/* Fills vm->vcpu_host (buses, stop callbacks, report, policy) before
 * the vCPUs are opened. */
void vm_run_init_vcpu_host(struct vm *vm);

#endif
