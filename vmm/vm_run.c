/* A VM's life after vm_create: starting its threads, stopping (the first
 * cause wins, every vCPU is kicked out of KVM_RUN), waiting for the end,
 * and what the front end may hold on to meanwhile (the stop eventfd, the
 * console input). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/cpu_x86.h"
#include "kvmini/log.h"
#include "kvmini/seccomp.h"
#include "kvmini/serial8250.h"
#include "kvmini/virtio_console.h"
#include "kvmini/vm.h"
#include "vm_run.h"
#include "vm_virtio.h"

static bool vm_stopping(void *ctx)
{
	const struct vm *vm = ctx;

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
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		LOG_DEBUG("stop eventfd: %s", strerror(errno));
}

void vm_request_stop_by_signal(struct vm *vm, int signo)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (vm->stop_cause == STOP_NONE)
		vm->stop_signal = signo;
	pthread_mutex_unlock(&vm->stop_lock);
	vm_request_stop(vm, STOP_SIGNAL);
}

static void stop_from_vcpu(void *ctx, enum vm_stop_cause cause)
{
	vm_request_stop(ctx, cause);
}

/* A vCPU halted with no irqchip to wake it (tiny test guests): the VM
 * ends when every vCPU did. */
static void vcpu_halted(void *ctx)
{
	struct vm *vm = ctx;
	unsigned halted;

	pthread_mutex_lock(&vm->stop_lock);
	halted = ++vm->halted_vcpus;
	pthread_mutex_unlock(&vm->stop_lock);
	if (halted == vm->nr_vcpus)
		vm_request_stop(vm, STOP_HALTED);
}

void vm_run_init_vcpu_host(struct vm *vm)
{
	vm->vcpu_host = (struct vcpu_host){
		.pio = &vm->pio, .mmio = &vm->mmio,
		.stopper = { stop_from_vcpu, vm },
		.halted = vcpu_halted, .stopping = vm_stopping, .ctx = vm,
		.report = vm->cfg.report, .run_size = vm->run_size,
		.policy = seccomp_policy(SECCOMP_VCPU),
	};
}

int vm_start(struct vm *vm, struct kv_err *e)
{
	sigset_t block, old;
	int r;

	r = vcpu_setup_kick(e);
	if (r)
		return r;
	/* Device I/O runs before the first guest instruction can ask for it. */
	r = vm_virtio_start(vm, e);
	if (r)
		return r;
	/* Threads start with the kick blocked and unblock it themselves, so
	 * the main thread never receives it. */
	sigemptyset(&block);
	sigaddset(&block, vcpu_kick_signal());
	pthread_sigmask(SIG_BLOCK, &block, &old);
	/* From here vCPU threads dispatch on the buses without a lock. */
	bus_seal(&vm->pio);
	bus_seal(&vm->mmio);
	for (unsigned i = 0; i < vm->nr_vcpus && !r; i++) {
		r = vcpu_start(&vm->vcpus[i], e);
		if (r) {
			/* The ones already running must be gone before vm_destroy. */
			vm_request_stop(vm, STOP_HOST_ERROR);
			vm_wait(vm);
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

enum vm_stop_cause vm_wait(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	/* No vCPU dispatches any more: devices may unregister. */
	bus_unseal(&vm->pio);
	bus_unseal(&vm->mmio);
	/* Where was the guest? A debugging aid for guests that hang. */
	if (getenv("KVMINI_DUMP_ON_EXIT")) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			fprintf(stderr, "kvmini: vCPU %u at exit:\r\n", i);
			cpu_dump_regs(vm->vcpus[i].fd, stderr);
		}
		/* A guest waiting on a device: what each ring says. */
		vm_virtio_dump(vm, stderr);
	}
	return vm->stop_cause;
}

int vm_stop_fd(const struct vm *vm)
{
	return vm->stop_efd;
}

/* ---- console input: the serial port, or hvc0 ---- */

static bool serial_ready(void *ctx)
{
	return serial8250_rx_ready(ctx);
}

static size_t serial_receive(void *ctx, const uint8_t *buf, size_t n)
{
	return serial8250_receive(ctx, buf, n);
}

static bool hvc_ready(void *ctx)
{
	return virtio_console_rx_ready(ctx);
}

static size_t hvc_receive(void *ctx, const uint8_t *buf, size_t n)
{
	return virtio_console_receive(ctx, buf, n);
}

static bool none_ready(void *ctx)
{
	return false;
}

void vm_console_resize(struct vm *vm, unsigned cols, unsigned rows)
{
	if (vm->console_dev)
		virtio_console_set_size(vm->console_dev, cols, rows);
}

struct console_input vm_console_input(struct vm *vm)
{
	if (vm->console_dev)
		return (struct console_input){ hvc_ready, hvc_receive, vm->console_dev };
	if (vm->serial)
		return (struct console_input){ serial_ready, serial_receive, vm->serial };
	return (struct console_input){ none_ready, NULL, NULL };
}
