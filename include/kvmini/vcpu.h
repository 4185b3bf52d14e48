/* One vCPU: its KVM fd, its kvm_run page, and a thread running the
 * KVM_RUN loop that dispatches exits to the buses. It knows no device
 * and no VM: what it needs is in struct vcpu_host, which the VM shares
 * between its vCPUs (vmm/vm.c owns the lifecycle). */
#ifndef KVMINI_VCPU_H
#define KVMINI_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <linux/kvm.h>

#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/report.h"
#include "kvmini/stop.h"
#include "kvmini/thread_policy.h"

struct vcpu_host {
	struct bus *pio, *mmio;
	/* Crashes, shutdown, reset, host errors end the VM through here. */
	struct vm_stopper stopper;
	/* KVM_EXIT_HLT with no in-kernel irqchip: this vCPU is done. */
	void (*halted)(void *ctx);
	/* True once the VM is stopping: the loop ends. */
	bool (*stopping)(void *ctx);
	void *ctx;
	struct report *report;      /* vCPU 0's first entry is marked here; may be NULL */
	size_t run_size;            /* KVM_GET_VCPU_MMAP_SIZE */
	struct thread_policy policy; /* entered by each vCPU thread first */
};

struct vcpu {
	const struct vcpu_host *host;
	unsigned id;
	int fd;                     /* -1: not created */
	struct kvm_run *run;        /* NULL: not mapped */
	pthread_t thread;
	bool thread_started;
};

/* KVM_CREATE_VCPU @id on @vm_fd and maps its kvm_run page. On failure
 * @v is left for vcpu_close to clean up. */
int vcpu_open(struct vcpu *v, int vm_fd, unsigned id, const struct vcpu_host *host,
	      struct kv_err *e) KV_MUST_CHECK;
void vcpu_close(struct vcpu *v);

/* Once per process, before any vcpu_start: the kick signal's handler. */
int vcpu_setup_kick(struct kv_err *e) KV_MUST_CHECK;
/* Starts @v's thread (the kick signal must be blocked in the caller;
 * the thread unblocks it for itself). */
int vcpu_start(struct vcpu *v, struct kv_err *e) KV_MUST_CHECK;
/* Makes @v leave KVM_RUN now (or not enter it again): for a stop. Safe
 * from any thread, including @v's own. */
void vcpu_kick(struct vcpu *v);
/* Joins @v's thread if it was started. */
void vcpu_join(struct vcpu *v);
/* The signal vcpu_kick uses: block it before starting vCPU threads. */
int vcpu_kick_signal(void);

#endif
