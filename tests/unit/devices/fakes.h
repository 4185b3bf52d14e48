/* Fakes shared by the device unit tests: an irq_sink and a vm_stopper
 * that record what the device asks of them, and byte accesses through a
 * PIO bus that fail the test when no device claims the port. */
#ifndef KVMINI_TEST_DEVICES_FAKES_H
#define KVMINI_TEST_DEVICES_FAKES_H

#include <stdint.h>
#include "kvmini/bus.h"
#include "kvmini/irq.h"
#include "kvmini/stop.h"

/* The level of one interrupt line and its edges. The sink fails the
 * test when a device reports a level the line already has: devices
 * promise to report changes only. */
struct fake_irq {
	int level;
	int raises, lowers;
	unsigned gsi;
};
/* Zeroes @f and returns a sink that records into it. */
struct irq_sink fake_irq_sink(struct fake_irq *f);

/* Stop requests, counted by reason. */
struct fake_stop {
	int resets, poweroffs;
};
/* Zeroes @f and returns a stopper that counts into it. */
struct vm_stopper fake_stopper(struct fake_stop *f);

/* One-byte IN and OUT at @port; each asserts that a device claimed it. */
uint8_t pio_inb(struct bus *pio, uint16_t port);
void pio_outb(struct bus *pio, uint16_t port, uint8_t v);

#endif
