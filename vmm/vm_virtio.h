/* The VM's virtio devices (vmm/vm_virtio.c): built from the config's
 * device list after the PC devices, each on its transport, with the
 * event loop that runs their I/O. Private to vmm/. */
#ifndef KVMINI_VMM_VM_VIRTIO_H
#define KVMINI_VMM_VM_VIRTIO_H

#include "kvmini/err.h"

struct vm;

/* Opens every disk and tap (errors name the file or tap), plugs each
 * device into its transport. Nothing runs until vm_virtio_start. */
int vm_virtio_init(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;
/* Starts the event-loop thread (before the vCPUs). */
int vm_virtio_start(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;
/* Stops the loop, then destroys transports and devices (copes with a
 * partial vm_virtio_init). */
void vm_virtio_fini(struct vm *vm);

#endif
