#ifndef KVMINI_CONTROL_PORT_H
#define KVMINI_CONTROL_PORT_H

#include <stdbool.h>
#include "kvmini/bus.h"
#include "kvmini/err.h"

/* kvmini's control port (PORT_CONTROL): the guest's init reports boot
 * events and --exec's exit status with one-byte writes (outb, e.g.
 * busybox dd to /dev/port). Only these mean anything; every other write
 * (other offsets, values, widths, repeats) is ignored and logged
 * rate-limited; reads return 0.
 *   offset 0, CONTROL_REG_EVENT:  CONTROL_EV_USERSPACE_UP, CONTROL_EV_CMD_STARTED
 *   offset 1, CONTROL_REG_STATUS: the command's exit status (0-255)
 * Each event counts once, the first status wins.
 * It also serves the pvpanic port (PORT_PVPANIC, ACPI QEMU0001, Linux's
 * pvpanic-mmio driver): reads say "panic events supported" (bit 0), and
 * the guest kernel writes bit 0 from its panic notifier: CONTROL_GUEST_PANIC. */
#define CONTROL_REG_EVENT       0
#define CONTROL_REG_STATUS      1
#define CONTROL_EV_USERSPACE_UP 0x01
#define CONTROL_EV_CMD_STARTED  0x02
#define PVPANIC_PANICKED        0x01
enum control_event { CONTROL_USERSPACE_UP, CONTROL_CMD_STARTED, CONTROL_CMD_DONE, CONTROL_GUEST_PANIC };
struct control_port;
struct control_port_cfg {
	/* Called once per event, outside the device lock, from the vCPU
	 * thread; @status is meaningful for CONTROL_CMD_DONE. May be NULL. */
	void (*on_event)(void *ctx, enum control_event ev, int status);
	void *ctx;
};
int control_port_create(struct bus *pio, const struct control_port_cfg *cfg,
			struct control_port **out, struct kv_err *e) KV_MUST_CHECK;
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void control_port_destroy(struct control_port *c);
/* True once the guest reported an exit status, stored in *status. */
bool control_port_status(struct control_port *c, int *status);

#endif
