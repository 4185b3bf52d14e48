#ifndef KVMINI_SERIAL8250_H
#define KVMINI_SERIAL8250_H

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
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void serial8250_destroy(struct serial8250 *s);
/* Queues up to @n bytes of input; returns how many fit in the RX FIFO. */
size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t n);
/* Free space in the RX FIFO (the terminal reader polls this). */
size_t serial8250_rx_space(struct serial8250 *s);
/* True while a driver has the receiver open and its receive interrupt
 * on. Input sent before a driver opened the port would be thrown away by
 * the driver's own probe or open sequence (lost type-ahead). */
bool serial8250_rx_ready(struct serial8250 *s);

#endif
