/* The VM: owns KVM's fds, guest memory, the buses, the devices and the
 * vCPU threads. Everything hangs off struct vm (no static singletons). */
#ifndef KVMINI_VM_H
#define KVMINI_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "kvmini/boot.h"
#include "kvmini/bus.h"
#include "kvmini/console_input.h"
#include "kvmini/cpu_x86.h"
#include "kvmini/err.h"
#include "kvmini/guest_mem.h"
#include "kvmini/irq.h"
#include "kvmini/report.h"
#include "kvmini/stop.h"
#include "kvmini/vcpu.h"
#include "kvmini/virtio.h"

struct config_devices;
struct evloop;
struct irq_routing;
struct vm_virtio_dev;
struct vm_stats;

struct vm;


struct vm_config {
	uint64_t memory;      /* bytes */
	struct gm_opts mem_opts; /* hugetlb, prefault (when the VM maps memory itself) */
	unsigned cpus;
	bool irqchip;         /* in-kernel LAPIC/IOAPIC/PIC + PIT (always, but for tiny tests) */
	enum cpu_model cpu_model; /* --cpu: what the guest sees of the host CPU */
	bool pc_devices;      /* UART, i8042, RTC, PCI root, ACPI PM */
	int console_out_fd;   /* where the UART writes */
	/* Guest memory already created (and loaded) by the caller; the VM
	 * takes it over. NULL: the VM maps @memory bytes itself. */
	struct guest_mem *premade_mem;
	/* --exec: COM2 carries the command's stdout to @exec_out_fd, COM3
	 * its stderr to @exec_err_fd (-1: discard), the control port its
	 * status; the exit status then follows the command (vm_exit_status). */
	bool exec;
	int exec_out_fd;
	int exec_err_fd;
	struct report *report;  /* milestones are marked here; NULL: none */
	bool kvm_stats;         /* open KVM's statistics for vm_stats_collect (--report) */
	/* --disk, --net, --console: virtio devices (NULL: none). */
	const struct config_devices *devices;
};

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct irq_sink irq;
	struct vm_stopper stopper;
	struct vcpu_host vcpu_host; /* what every vCPU shares */
	struct vcpu *vcpus;
	unsigned nr_vcpus;
	struct kvm_cpuid2 *cpuid;   /* KVM_GET_SUPPORTED_CPUID, fixed up per vCPU */
	struct serial8250 *serial;
	struct i8042 *i8042;
	struct cmos_rtc *rtc;
	struct legacy_misc *misc;
	struct pci_root *pci;
	struct acpi_pm *acpi_pm;
	struct serial8250 *serial_out;   /* COM2: --exec stdout */
	struct serial8250 *serial_err;   /* COM3: --exec stderr */
	struct control_port *control;
	struct evloop *loop;        /* virtio I/O thread (vmm/vm_virtio.c) */
	struct irq_routing *routing;
	struct virtio_host virtio_host;
	struct vm_virtio_dev *virtio;
	unsigned nr_virtio;
	struct virtio_dev *console_dev; /* --console virtio: stdin goes here */
	int stop_efd;               /* eventfd: signalled when the VM stops */
	pthread_mutex_t stop_lock;
	enum vm_stop_cause stop_cause;
	unsigned halted_vcpus;
	int stop_signal;            /* for STOP_SIGNAL */
	struct vm_stats *stats;     /* KVM's statistics (NULL: none; vmm/vm_stats.c) */
	unsigned init_done;         /* how many init steps to unwind */
};

int vm_create(struct vm **out, const struct vm_config *cfg, struct kv_err *e) KV_MUST_CHECK;
void vm_destroy(struct vm *vm);

/* Puts the boot vCPU in the state @entry describes (APs wait for SIPI). */
int vm_set_entry(struct vm *vm, const struct boot_entry *entry, struct kv_err *e) KV_MUST_CHECK;

/* Starts the device I/O thread, then one thread per vCPU. */
int vm_start(struct vm *vm, struct kv_err *e) KV_MUST_CHECK;

/* Asks every vCPU to leave KVM_RUN and the VM to end with @cause; the
 * first cause recorded wins. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_cause cause);

/* Joins the vCPU threads (after a stop) and returns the cause. */
enum vm_stop_cause vm_wait(struct vm *vm);

/* The VM ends because the process got signal @signo (exit 128 + @signo). */
void vm_request_stop_by_signal(struct vm *vm, int signo);

/* An eventfd that becomes readable when the VM stops. */
int vm_stop_fd(const struct vm *vm);

/* The guest's console input (the serial port, or hvc0 with --console
 * virtio), for the terminal. Its functions are safe from any thread. */
struct console_input vm_console_input(struct vm *vm);
/* The user's terminal size, for a console that carries it (virtio-console
 * F_SIZE; the UART has no way to). Any thread. */
void vm_console_resize(struct vm *vm, unsigned cols, unsigned rows);

/* Process exit status for the way @vm stopped (and, under --exec, the
 * command's status from the control port). */
int vm_exit_status(const struct vm *vm);
/* Puts KVM's statistics for @vm, read now (after vm_wait: its stats
 * fds are opened, read with pread and closed here), into @r, valid until
 * vm_destroy. -ENOTSUP without vm_config.kvm_stats, another -errno when
 * this KVM has no binary statistics (before Linux 5.14). Every call it
 * makes is allowed by the main thread's filter. */
int vm_stats_collect(struct vm *vm, struct report *r) KV_MUST_CHECK;

/* A short name for the stop cause, for --report ("poweroff", ...). */
const char *vm_stop_name(enum vm_stop_cause cause);

#endif
