/* VM lifecycle: an explicit table of init steps, unwound in reverse. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/config.h"
#include "kvmini/cpu_x86.h"
#include "kvmini/acpi_pm.h"
#include "kvmini/cmos_rtc.h"
#include "kvmini/control_port.h"
#include "kvmini/i8042.h"
#include "kvmini/legacy_misc.h"
#include "kvmini/pci_root.h"
#include "kvmini/serial8250.h"
#include "kvmini/kvm.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"
#include "kvmini/vm.h"
#include "vm_run.h"
#include "vm_stats.h"
#include "vm_virtio.h"

static int init_kvm(struct vm *vm, struct kv_err *e)
{
	int fd = kvm_open(e);

	if (fd < 0)
		return fd;
	vm->kvm_fd = fd;
	int run_size = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	if (run_size <= 0)
		return kv_err_set(e, -errno, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = (size_t)run_size;
	if (vm->cfg.cpus > (unsigned)kvm_check_cap(fd, KVM_CAP_MAX_VCPUS) &&
	    vm->cfg.cpus > (unsigned)kvm_check_cap(fd, KVM_CAP_NR_VCPUS))
		return kv_err_set(e, -EINVAL, "--cpus %u: this host's KVM allows at most %d vCPUs",
				  vm->cfg.cpus, kvm_check_cap(fd, KVM_CAP_MAX_VCPUS));
	return 0;
}

static void fini_kvm(struct vm *vm)
{
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
}

static int init_vm_fd(struct vm *vm, struct kv_err *e)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return kv_err_set(e, -errno, "KVM_CREATE_VM: %s", strerror(errno));
	return 0;
}

static void fini_vm_fd(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
}

static int init_arch(struct vm *vm, struct kv_err *e)
{
	uint64_t identity = LAYOUT_KVM_IDENTITY_MAP;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	/* Intel needs these pages for real-mode emulation; both sit in the
	 * MMIO hole so they never shadow RAM. */
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
		return kv_err_set(e, -errno, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_KVM_TSS) < 0)
		return kv_err_set(e, -errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (!vm->cfg.irqchip)
		return 0;
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kv_err_set(e, -errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return kv_err_set(e, -errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

static int init_memory(struct vm *vm, struct kv_err *e)
{
	int r = 0;

	if (vm->cfg.premade_mem) {
		vm->mem = *vm->cfg.premade_mem;
		memset(vm->cfg.premade_mem, 0, sizeof(*vm->cfg.premade_mem));
		vm->cfg.premade_mem = NULL;
	} else {
		r = gm_create(&vm->mem, vm->cfg.memory, &vm->cfg.mem_opts, e);
	}
	if (r)
		return r;
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *g = &vm->mem.regions[i];
		/* KVM maps a 2 MiB guest page with one 2 MiB host page only when
		 * both addresses agree modulo 2 MiB: gm_create guarantees it;
		 * memory made elsewhere (tests) may not. */
		if (!gm_region_congruent(g, GM_HUGE_2M))
			LOG_WARN("memory slot %u: host address %p and guest address 0x%llx differ "
				 "modulo 2 MiB: KVM will map it with 4 KiB pages only", i,
				 (void *)g->host, (unsigned long long)g->gpa);
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = g->gpa,
			.memory_size = g->size,
			.userspace_addr = (uintptr_t)g->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			r = kv_err_set(e, -errno, "KVM_SET_USER_MEMORY_REGION %u (%llu MiB at 0x%llx): %s",
				       i, (unsigned long long)(g->size >> 20),
				       (unsigned long long)g->gpa, strerror(errno));
			gm_destroy(&vm->mem);
			return r;
		}
	}
	return 0;
}

static void fini_memory(struct vm *vm)
{
	gm_destroy(&vm->mem);
}

static int irq_set_kvm(void *ctx, unsigned gsi, int level)
{
	struct vm *vm = ctx;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (!vm->cfg.irqchip)
		return 0;
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

static void stopper_request(void *ctx, enum vm_stop_cause cause)
{
	vm_request_stop(ctx, cause);
}

static int init_buses(struct vm *vm, struct kv_err *e)
{
	bus_init(&vm->pio, BUS_PIO);
	bus_init(&vm->mmio, BUS_MMIO);
	vm->irq = (struct irq_sink){ irq_set_kvm, vm };
	vm->stopper = (struct vm_stopper){ stopper_request, vm };
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return kv_err_set(e, -errno, "eventfd: %s", strerror(errno));
	return 0;
}

static void fini_buses(struct vm *vm)
{
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
}

static void first_serial_byte(void *ctx)
{
	struct vm *vm = ctx;

	report_mark(vm->cfg.report, MS_FIRST_SERIAL_BYTE);
	LOG_DEBUG("%.3f s: first byte from the guest's UART", log_uptime());
}

static void control_event(void *ctx, enum control_event ev, int status)
{
	struct vm *vm = ctx;

	switch (ev) {
	case CONTROL_USERSPACE_UP:
		report_mark(vm->cfg.report, MS_USERSPACE_UP);
		LOG_DEBUG("%.3f s: guest userspace up", log_uptime());
		break;
	case CONTROL_CMD_STARTED:
		report_mark(vm->cfg.report, MS_COMMAND_STARTED);
		LOG_DEBUG("%.3f s: command started", log_uptime());
		break;
	case CONTROL_CMD_DONE:
		report_mark(vm->cfg.report, MS_COMMAND_DONE);
		LOG_DEBUG("%.3f s: command exited with status %d", log_uptime(), status);
		break;
	case CONTROL_GUEST_PANIC:
		LOG_ERR("the guest kernel panicked (pvpanic): stopping the VM");
		vm_request_stop(vm, STOP_GUEST_PANIC);
		break;
	}
}

/* COM2 and COM3 carry --exec's stdout and stderr; they exist in every
 * VM so the guest's hardware does not depend on the mode. */
static int init_exec_channels(struct vm *vm, struct kv_err *e)
{
	struct serial8250_cfg out = {
		.base = PORT_COM2, .gsi = GSI_COM2, .irq = &vm->irq,
		.out_fd = vm->cfg.exec ? vm->cfg.exec_out_fd : -1,
	};
	struct serial8250_cfg err = {
		.base = PORT_COM3, .gsi = GSI_COM3, .irq = &vm->irq,
		.out_fd = vm->cfg.exec ? vm->cfg.exec_err_fd : -1,
	};
	struct control_port_cfg ccfg = { .on_event = control_event, .ctx = vm };
	int r;

	r = serial8250_create(&vm->pio, &out, &vm->serial_out, e);
	if (!r)
		r = serial8250_create(&vm->pio, &err, &vm->serial_err, e);
	if (!r)
		r = control_port_create(&vm->pio, &ccfg, &vm->control, e);
	return r;
}

static int init_devices(struct vm *vm, struct kv_err *e)
{
	struct serial8250_cfg scfg = {
		.base = PORT_COM1, .gsi = GSI_COM1, .irq = &vm->irq,
		.out_fd = vm->cfg.console_out_fd, .on_first_byte = first_serial_byte, .ctx = vm,
	};
	int r;

	if (!vm->cfg.pc_devices)
		return 0;
	r = serial8250_create(&vm->pio, &scfg, &vm->serial, e);
	if (!r)
		r = i8042_create(&vm->pio, &vm->stopper, &vm->i8042, e);
	if (!r)
		r = cmos_rtc_create(&vm->pio, vm->cfg.memory, &vm->rtc, e);
	if (!r)
		r = legacy_misc_create(&vm->pio, &vm->misc, e);
	if (!r)
		r = pci_root_create(&vm->pio, &vm->pci, e);
	if (!r)
		r = acpi_pm_create(&vm->pio, &vm->stopper, &vm->acpi_pm, e);
	if (!r)
		r = init_exec_channels(vm, e);
	return r; /* on failure, fini_devices frees what was created */
}

static void fini_devices(struct vm *vm)
{
	/* Each destroy takes NULL (a device init never got to). */
	control_port_destroy(vm->control);
	serial8250_destroy(vm->serial_err);
	serial8250_destroy(vm->serial_out);
	acpi_pm_destroy(vm->acpi_pm);
	pci_root_destroy(vm->pci);
	legacy_misc_destroy(vm->misc);
	cmos_rtc_destroy(vm->rtc);
	i8042_destroy(vm->i8042);
	serial8250_destroy(vm->serial);
}

static int init_vcpus(struct vm *vm, struct kv_err *e)
{
	struct kvm_cpuid2 *percpu;
	int r;

	r = cpu_get_supported_cpuid(vm->kvm_fd, &vm->cpuid, e);
	if (r)
		return r;
	percpu = malloc(sizeof(*percpu) + vm->cpuid->nent * sizeof(percpu->entries[0]));
	vm->vcpus = calloc(vm->cfg.cpus, sizeof(*vm->vcpus));
	if (!percpu || !vm->vcpus) {
		free(percpu);
		return kv_err_set(e, -ENOMEM, "out of memory for vCPUs");
	}
	vm_run_init_vcpu_host(vm);
	for (unsigned i = 0; i < vm->cfg.cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		r = vcpu_open(v, vm->vm_fd, i, &vm->vcpu_host, e);
		vm->nr_vcpus++; /* vcpu_close copes with a half-open one */
		if (r)
			break;
		cpu_fixup_cpuid(vm->cpuid, percpu, i, vm->cfg.cpus, vm->cfg.cpu_model);
		r = cpu_init_vcpu(v->fd, percpu, vm->cfg.irqchip, e);
		if (r) {
			kv_err_prefix(e, "vCPU %u", i);
			break;
		}
	}
	free(percpu);
	return r;
}

static void fini_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_close(&vm->vcpus[i]);
	free(vm->vcpus);
	free(vm->cpuid);
}

struct init_step {
	const char *name;
	int (*init)(struct vm *vm, struct kv_err *e);
	void (*fini)(struct vm *vm);
};

/* Ordered: each step may use what the steps before it set up. Every fini
 * copes with the partial state its own init leaves when it fails (fds are
 * -1, pointers NULL, memory zeroed), so a failure unwinds that step too. */
static const struct init_step init_steps[] = {
	{ "virtio devices", vm_virtio_open, vm_virtio_close },
	{ "kvm",     init_kvm,     fini_kvm },
	{ "vm",      init_vm_fd,   fini_vm_fd },
	{ "arch",    init_arch,    NULL },
	{ "memory",  init_memory,  fini_memory },
	{ "buses",   init_buses,   fini_buses },
	{ "devices", init_devices, fini_devices },
	{ "virtio transports", vm_virtio_attach, vm_virtio_detach },
	{ "vcpus",   init_vcpus,   fini_vcpus },
	{ "stats",   vm_stats_init, vm_stats_fini },
};
#define NR_INIT_STEPS (sizeof(init_steps) / sizeof(init_steps[0]))

static void vm_unwind(struct vm *vm, unsigned done)
{
	while (done-- > 0)
		if (init_steps[done].fini)
			init_steps[done].fini(vm);
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct kv_err *e)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int r = 0;

	if (!vm)
		return kv_err_set(e, -ENOMEM, "out of memory");
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	for (unsigned i = 0; i < NR_INIT_STEPS; i++) {
		r = init_steps[i].init(vm, e);
		LOG_DEBUG("%.3f s: VM step %s %s", log_uptime(), init_steps[i].name, r ? "failed" : "done");
		if (r) {
			vm_unwind(vm, i + 1);
			pthread_mutex_destroy(&vm->stop_lock);
			free(vm);
			return r;
		}
	}
	vm->init_done = NR_INIT_STEPS;
	*out = vm;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vm_unwind(vm, vm->init_done);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}

int vm_set_entry(struct vm *vm, const struct boot_entry *entry, struct kv_err *e)
{
	return cpu_set_entry(vm->vcpus[0].fd, entry, e);
}
