/* vCPU threads: the KVM_RUN loop and exit dispatch to the buses. The loop
 * knows no device; it validates what KVM reports before dispatching. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/cpu_x86.h"
#include "kvmini/log.h"
#include "kvmini/seccomp.h"
#include "kvmini/vm.h"
#include "vm_virtio.h"

#define SIG_VCPU_KICK SIGUSR1

static __thread struct vcpu *current_vcpu;

static void kick_handler(int sig)
{
	(void)sig; /* only interrupts KVM_RUN (no SA_RESTART) */
}

static bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stop_cause, __ATOMIC_ACQUIRE) != STOP_NONE;
}

void vm_request_stop(struct vm *vm, enum vm_stop_cause cause)
{
	uint64_t one = 1;
	bool first;

	pthread_mutex_lock(&vm->stop_lock);
	first = vm->stop_cause == STOP_NONE;
	if (first)
		__atomic_store_n(&vm->stop_cause, cause, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&vm->stop_lock);
	if (!first)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		/* immediate_exit covers a vCPU that is about to enter KVM_RUN;
		 * the signal covers one already inside it. */
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (v->thread_started && v != current_vcpu)
			pthread_kill(v->thread, SIG_VCPU_KICK);
	}
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		LOG_DEBUG("stop eventfd: %s", strerror(errno));
}

static void crash(struct vcpu *v, const char *what)
{
	fprintf(stderr, "kvmini: guest %s on vCPU %u; registers:\r\n", what, v->id);
	cpu_dump_regs(v->fd, stderr);
	vm_request_stop(v->vm, STOP_GUEST_CRASH);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;
	uint64_t bytes = (uint64_t)size * run->io.count;

	/* KVM fills these, but check before trusting offsets into the page. */
	if ((size != 1 && size != 2 && size != 4) || run->io.count == 0 ||
	    run->io.data_offset + bytes > (uint64_t)v->vm->run_size) {
		LOG_WARN("vCPU %u: malformed I/O exit (port 0x%x size %u count %u)",
			 v->id, run->io.port, size, run->io.count);
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		bus_dispatch(&v->vm->pio, run->io.port, data, size,
			     run->io.direction == KVM_EXIT_IO_OUT);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
		LOG_WARN("vCPU %u: malformed MMIO exit (len %u)", v->id, run->mmio.len);
		return;
	}
	bus_dispatch(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		     run->mmio.is_write);
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(v->vm, STOP_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(v->vm, STOP_RESET);
		break;
	default:
		crash(v, "system event (crash)");
		break;
	}
}

static void handle_hlt(struct vcpu *v)
{
	struct vm *vm = v->vm;
	unsigned halted;

	/* Only without an in-kernel irqchip: nothing can wake the vCPU. */
	pthread_mutex_lock(&vm->stop_lock);
	halted = ++vm->halted_vcpus;
	pthread_mutex_unlock(&vm->stop_lock);
	if (halted == vm->nr_vcpus)
		vm_request_stop(vm, STOP_HALTED);
}

/* Returns false when this vCPU must leave its loop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_HLT:
		handle_hlt(v);
		return false;
	case KVM_EXIT_SHUTDOWN:
		crash(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		fprintf(stderr, "kvmini: VM entry failed, hardware reason 0x%llx\r\n",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash(v, "entry failure (KVM_EXIT_FAIL_ENTRY)");
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		fprintf(stderr, "kvmini: KVM internal error, suberror %u\r\n", run->internal.suberror);
		crash(v, "KVM internal error");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(v);
		return false;
	case KVM_EXIT_INTR:
		return true;
	default:
		fprintf(stderr, "kvmini: unexpected KVM exit reason %u\r\n", run->exit_reason);
		crash(v, "unhandled exit");
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct kv_err e = { 0 };
	sigset_t unblock;

	current_vcpu = v;
	sigemptyset(&unblock);
	sigaddset(&unblock, SIG_VCPU_KICK);
	pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	/* Everything this thread will touch is open by now. */
	if (seccomp_thread_start(SECCOMP_VCPU, &e)) {
		LOG_ERR("vCPU %u: %s", v->id, e.msg);
		vm_request_stop(vm, STOP_HOST_ERROR);
		return NULL;
	}

	if (v->id == 0)
		report_mark(vm->cfg.report, MS_FIRST_VCPU_ENTRY);
	while (!vm_stopping(vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			LOG_ERR("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			vm_request_stop(vm, STOP_HOST_ERROR);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vm_start(struct vm *vm, struct kv_err *e)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigset_t block, old;
	int r = 0;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_VCPU_KICK, &sa, NULL) < 0)
		return kv_err_set(e, -errno, "sigaction: %s", strerror(errno));
	/* Device I/O runs before the first guest instruction can ask for it. */
	r = vm_virtio_start(vm, e);
	if (r)
		return r;
	/* Threads start with the kick blocked and unblock it themselves, so
	 * the main thread never receives it. */
	sigemptyset(&block);
	sigaddset(&block, SIG_VCPU_KICK);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int err = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);

		if (err) {
			r = kv_err_set(e, -err, "cannot start vCPU %u thread: %s", i, strerror(err));
			vm_request_stop(vm, STOP_HOST_ERROR);
			break;
		}
		vm->vcpus[i].thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

enum vm_stop_cause vm_wait(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	}
	/* Where was the guest? A debugging aid for guests that hang. */
	if (getenv("KVMINI_DUMP_ON_EXIT")) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			fprintf(stderr, "kvmini: vCPU %u at exit:\r\n", i);
			cpu_dump_regs(vm->vcpus[i].fd, stderr);
		}
	}
	return vm->stop_cause;
}
