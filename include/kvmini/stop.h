/* Why a VM stops, and how a device asks for it without knowing the VM:
 * the one stop enum of kvmini (it decides the process exit status). */
#ifndef KVMINI_STOP_H
#define KVMINI_STOP_H

enum vm_stop_cause {
	STOP_NONE,
	STOP_POWEROFF,      /* ACPI S5 */
	STOP_RESET,         /* i8042 or ACPI reset */
	STOP_HALTED,        /* all vCPUs halted with no irqchip (tiny test guests) */
	STOP_USER,          /* Ctrl-A x */
	STOP_SIGNAL,        /* SIGINT, SIGTERM, SIGHUP, SIGQUIT: status 128 + signal */
	STOP_GUEST_CRASH,   /* triple fault, failed entry, internal error */
	STOP_HOST_ERROR,    /* an ioctl failed */
	STOP_TIMEOUT,       /* --timeout fired */
	STOP_GUEST_PANIC,   /* the guest kernel said so on the pvpanic port */
};

/* Handed to devices that can end the VM (i8042 reset, ACPI power-off):
 * request_stop records the first cause and makes every vCPU leave. */
struct vm_stopper {
	void (*request_stop)(void *ctx, enum vm_stop_cause cause);
	void *ctx;
};

static inline void vm_stopper_request(const struct vm_stopper *s, enum vm_stop_cause cause)
{
	if (s && s->request_stop)
		s->request_stop(s->ctx, cause);
}

#endif
