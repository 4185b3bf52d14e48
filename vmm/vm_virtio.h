/* The VM's virtio devices (vmm/vm_virtio.c): built from the config's
 * device list after the PC devices, each on its transport, with the
 * event loop that runs their I/O. Private to vmm/. */
#ifndef KVMINI_VMM_VM_VIRTIO_H
#define KVMINI_VMM_VM_VIRTIO_H

#include <stdio.h>

#include "kvmini/err.h"

struct vm;

/* Creates every device: opens every disk and tap (errors name the file or
 * tap). Needs no KVM: runs first, so bad files fail on any host. */
int vm_virtio_open(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;
/* Plugs each device into its transport. Nothing runs until vm_virtio_start. */
int vm_virtio_attach(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;
/* Starts the event-loop thread (before the vCPUs). */
int vm_virtio_start(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;
/* Undo vm_virtio_attach, then vm_virtio_open (each copes with a partial
 * run of its pair). */
void vm_virtio_detach(struct vm *vm);
void vm_virtio_close(struct vm *vm);

/* Each virtio-fs device's counts (--report), at most @max; returns how
 * many it filled. */
struct virtio_fs_counts;
unsigned vm_virtio_fs_counts(struct vm *vm, struct virtio_fs_counts *out, unsigned max);

/* Every device's state on @f (virtio_dev_dump): KVMINI_DUMP_ON_EXIT. */
void vm_virtio_dump(struct vm *vm, FILE *f);

#endif
