/* The legacy PC devices a stock Linux kernel expects. Each registers its
 * ports on the PIO bus and returns an opaque handle; *_destroy frees it. */
#ifndef KVMINI_DEVICES_H
#define KVMINI_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/irq.h"

/* 8250/16550A UART. Output bytes go to @out_fd; input arrives through
 * serial8250_receive from whoever reads the terminal. */
struct serial8250;
struct serial8250_cfg {
	uint16_t base;          /* PORT_COM1 */
	unsigned gsi;           /* GSI_COM1 */
	const struct irq_sink *irq;
	int out_fd;             /* -1: discard output */
	/* Called (outside the device lock) the first time the guest writes a
	 * byte to THR, so the VMM can record that boot milestone. May be NULL. */
	void (*on_first_byte)(void *ctx);
	void *ctx;
};
int serial8250_create(struct bus *pio, const struct serial8250_cfg *cfg,
		      struct serial8250 **out, struct kv_err *e) KV_MUST_CHECK;
void serial8250_destroy(struct serial8250 *s);
/* Queues up to @n bytes of input; returns how many fit in the RX FIFO. */
size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t n);
/* Free space in the RX FIFO (the terminal reader polls this). */
size_t serial8250_rx_space(struct serial8250 *s);
/* True while a driver has the receiver open and its receive interrupt
 * on. Input sent before a driver opened the port would be thrown away by
 * the driver's own probe or open sequence (lost type-ahead). */
bool serial8250_rx_ready(struct serial8250 *s);

/* i8042 keyboard controller: enough for Linux's probe and the reset line
 * (command 0xfe on port 0x64 asks the VM to stop with VM_STOP_RESET). */
struct i8042;
int i8042_create(struct bus *pio, const struct vm_stopper *stop,
		 struct i8042 **out, struct kv_err *e) KV_MUST_CHECK;
void i8042_destroy(struct i8042 *k);

/* CMOS RTC at 0x70/0x71: the host's UTC time in BCD, update-in-progress
 * never stuck, so the kernel's RTC probe returns at once. */
struct cmos_rtc;
int cmos_rtc_create(struct bus *pio, uint64_t ram_size, struct cmos_rtc **out,
		    struct kv_err *e) KV_MUST_CHECK;
void cmos_rtc_destroy(struct cmos_rtc *r);

/* Ports a stock kernel pokes at boot that need only be swallowed:
 * 0x80 (POST/delay), 0xed, PIC ELCR 0x4d0-0x4d1 if not in-kernel, etc. */
struct legacy_misc;
int legacy_misc_create(struct bus *pio, struct legacy_misc **out, struct kv_err *e) KV_MUST_CHECK;
void legacy_misc_destroy(struct legacy_misc *m);

/* PCI configuration mechanism #1 at 0xcf8-0xcff with a host bridge at
 * 00:00.0 and no other devices yet; other slots read as all-ones. */
struct pci_root;
int pci_root_create(struct bus *pio, struct pci_root **out, struct kv_err *e) KV_MUST_CHECK;
void pci_root_destroy(struct pci_root *p);

/* A PCI function plugged into bus 0. @reg is 0..255 and reg + len stays
 * within one dword; the root serialises calls (its lock is held). */
struct pci_dev_ops {
	void (*cfg_read)(void *opaque, unsigned reg, void *data, unsigned len);
	void (*cfg_write)(void *opaque, unsigned reg, const void *data, unsigned len);
};
/* Plugs a function into the next free slot (1..LAYOUT_PCI_MAX_SLOTS) and
 * returns the slot number in *@slot (its BAR address and INTx GSI follow
 * from it, see layout.h). -ENOSPC when the bus is full. Before the VM
 * starts only. */
int pci_root_add(struct pci_root *p, const struct pci_dev_ops *ops, void *opaque,
		 unsigned *slot, struct kv_err *e) KV_MUST_CHECK;
/* Unplugs the function at @slot (a failed or destroyed transport): when
 * it returns, the root no longer calls its ops. */
void pci_root_remove(struct pci_root *p, unsigned slot);

/* ACPI hardware-reduced sleep control/status and reset registers
 * (PORT_ACPI_SLEEP, PORT_ACPI_RESET) as the FADT describes them: writing
 * SLP_EN with SLP_TYP 5 requests VM_STOP_POWEROFF, writing
 * ACPI_RESET_VALUE to the reset register requests VM_STOP_RESET. */
struct acpi_pm;
int acpi_pm_create(struct bus *pio, const struct vm_stopper *stop,
		   struct acpi_pm **out, struct kv_err *e) KV_MUST_CHECK;
void acpi_pm_destroy(struct acpi_pm *a);

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
void control_port_destroy(struct control_port *c);
/* True once the guest reported an exit status, stored in *status. */
bool control_port_status(struct control_port *c, int *status);

#endif
