/* vCPU threads: the KVM_RUN loop and exit dispatch to the buses. The loop
 * knows no device; it validates what KVM reports before dispatching. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/cpu_x86.h"
#include "kvmini/log.h"
#include "kvmini/vcpu.h"

#define SIG_VCPU_KICK SIGUSR1

static void kick_handler(int sig)
{
	(void)sig; /* only interrupts KVM_RUN (no SA_RESTART) */
}

int vcpu_kick_signal(void)
{
	return SIG_VCPU_KICK;
}

int vcpu_setup_kick(struct kv_err *e)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_VCPU_KICK, &sa, NULL) < 0)
		return kv_err_set(e, -errno, "sigaction: %s", strerror(errno));
	return 0;
}

int vcpu_open(struct vcpu *v, int vm_fd, unsigned id, const struct vcpu_host *host,
	      struct kv_err *e)
{
	*v = (struct vcpu){ .host = host, .id = id, .fd = -1 };
	v->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return kv_err_set(e, -errno, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
	v->run = mmap(NULL, host->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return kv_err_set(e, -errno, "mmap of vCPU %u's kvm_run: %s", id, strerror(errno));
	}
	return 0;
}

void vcpu_close(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->host->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->run)
		return;
	/* immediate_exit covers a vCPU that is about to enter KVM_RUN; the
	 * signal covers one already inside it. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (v->thread_started && !pthread_equal(v->thread, pthread_self()))
		pthread_kill(v->thread, SIG_VCPU_KICK);
}

static void request_stop(struct vcpu *v, enum vm_stop_cause cause)
{
	vm_stopper_request(&v->host->stopper, cause);
}

static void crash(struct vcpu *v, const char *what)
{
	fprintf(stderr, "kvmini: guest %s on vCPU %u; registers:\r\n", what, v->id);
	cpu_dump_regs(v->fd, stderr);
	request_stop(v, STOP_GUEST_CRASH);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;
	uint64_t bytes = (uint64_t)size * run->io.count;

	/* KVM fills these, but check before trusting offsets into the page. */
	if ((size != 1 && size != 2 && size != 4) || run->io.count == 0 ||
	    run->io.data_offset + bytes > v->host->run_size) {
		LOG_WARN("vCPU %u: malformed I/O exit (port 0x%x size %u count %u)",
			 v->id, run->io.port, size, run->io.count);
		return;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		bus_dispatch(v->host->pio, run->io.port, data, size,
			     run->io.direction == KVM_EXIT_IO_OUT);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
		LOG_WARN("vCPU %u: malformed MMIO exit (len %u)", v->id, run->mmio.len);
		return;
	}
	bus_dispatch(v->host->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
		     run->mmio.is_write);
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		request_stop(v, STOP_POWEROFF);
		break;
	case KVM_SYSTEM_EVENT_RESET:
		request_stop(v, STOP_RESET);
		break;
	default:
		crash(v, "system event (crash)");
		break;
	}
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
		/* Only without an in-kernel irqchip: nothing can wake it. */
		if (v->host->halted)
			v->host->halted(v->host->ctx);
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

static bool stopping(const struct vcpu *v)
{
	return v->host->stopping && v->host->stopping(v->host->ctx);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct kv_err e = { 0 };
	sigset_t unblock;

	sigemptyset(&unblock);
	sigaddset(&unblock, SIG_VCPU_KICK);
	pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	/* Everything this thread will touch is open by now. */
	if (thread_policy_enter(&v->host->policy, &e)) {
		LOG_ERR("vCPU %u: %s", v->id, e.msg);
		request_stop(v, STOP_HOST_ERROR);
		return NULL;
	}
	if (v->id == 0)
		report_mark(v->host->report, MS_FIRST_VCPU_ENTRY);
	while (!stopping(v)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			LOG_ERR("vCPU %u: KVM_RUN: %s", v->id, strerror(errno));
			request_stop(v, STOP_HOST_ERROR);
			break;
		}
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v, struct kv_err *e)
{
	int err = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (err)
		return kv_err_set(e, -err, "cannot start vCPU %u thread: %s", v->id, strerror(err));
	v->thread_started = true;
	return 0;
}

void vcpu_join(struct vcpu *v)
{
	if (v->thread_started) {
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
}
