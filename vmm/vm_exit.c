/* How a VM's end becomes kvmini's exit status and --report's
 * stop_reason (the table is in README.md and --help). */
#include "kvmini/config.h"
#include "kvmini/control_port.h"
#include "kvmini/vm.h"

const char *vm_stop_name(enum vm_stop_cause cause)
{
	static const char *const names[] = {
		[STOP_NONE] = "none", [STOP_POWEROFF] = "poweroff", [STOP_RESET] = "reset",
		[STOP_HALTED] = "halted", [STOP_USER] = "user", [STOP_SIGNAL] = "signal",
		[STOP_GUEST_CRASH] = "guest_crash", [STOP_HOST_ERROR] = "host_error",
		[STOP_TIMEOUT] = "timeout", [STOP_GUEST_PANIC] = "guest_panic",
	};

	return (unsigned)cause < sizeof(names) / sizeof(names[0]) && names[cause] ? names[cause] : "?";
}

/* --exec: the command's status once reported, whatever ended the VM
 * afterwards (poweroff -f normally); without one, the way it ended. */
static int exec_exit_status(const struct vm *vm)
{
	int status;

	if (vm->stop_cause == STOP_TIMEOUT)
		return KVMINI_EXIT_TIMEOUT;
	if (vm->stop_cause == STOP_SIGNAL)
		return 128 + vm->stop_signal;
	if (vm->control && control_port_status(vm->control, &status))
		return status;
	switch (vm->stop_cause) {
	case STOP_GUEST_PANIC:
		return KVMINI_EXIT_GUEST_PANIC;
	case STOP_RESET:
	case STOP_POWEROFF:
	case STOP_HALTED:
	case STOP_USER:
		return KVMINI_EXIT_NO_STATUS;
	case STOP_GUEST_CRASH:
		return KVMINI_EXIT_GUEST_CRASH;
	default:
		return KVMINI_EXIT_FAILURE;
	}
}

int vm_exit_status(const struct vm *vm)
{
	if (vm->cfg.exec)
		return exec_exit_status(vm);
	switch (vm->stop_cause) {
	case STOP_TIMEOUT:
		return KVMINI_EXIT_TIMEOUT;
	case STOP_GUEST_PANIC:
		return KVMINI_EXIT_GUEST_PANIC;
	case STOP_POWEROFF:
	case STOP_RESET:
	case STOP_HALTED:
	case STOP_USER:
		return KVMINI_EXIT_OK;
	case STOP_GUEST_CRASH:
		return KVMINI_EXIT_GUEST_CRASH;
	case STOP_SIGNAL:
		return 128 + vm->stop_signal;
	default:
		return KVMINI_EXIT_FAILURE;
	}
}
