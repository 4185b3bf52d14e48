/* A fake virtio device and host for the transport fuzz targets
 * (fuzz_virtio_pci.c, fuzz_virtio_mmio.c), and the oracles they share.
 *
 * The device has an 8-byte config space and really processes its
 * queues: a kick pops chains (each checked against fr_model_pop: the
 * head the driver made available, the buffers its descriptors name),
 * writes into their writable buffers, and completes some at once and
 * holds others "in flight" until a device event completes them, a queue
 * stop (completes or drops) or a reset (drops). The host records MSI
 * routes and KVM's ioeventfd table (fake_kvm_write then routes a guest
 * write as KVM would) and can be told to fail.
 *
 * fake_step_begin/fake_step_end bracket every input step; at the end
 * they check:
 * - guest memory: every byte the device changed lies in a used ring of
 *   a queue enabled during the step or in a writable buffer of a chain
 *   it popped during the step (shadow copy, fr_shadow_check);
 * - the used ring: each completion names a head popped and not yet
 *   completed, with a length within that chain's writable bytes, at the
 *   slot and index vq_push promises;
 * - queues: no chain is still held on a queue that is not enabled (a
 *   queue stop or reset finished or dropped the device's work first), an
 *   enabled queue was enabled after FEATURES_OK and runs with exactly the
 *   negotiated EVENT_IDX / INDIRECT_DESC;
 * - status: FEATURES_OK only with offered features including VERSION_1,
 *   the driver's features frozen from FEATURES_OK to a reset, the
 *   driver's status bits and NEEDS_RESET cleared only by a reset, one
 *   activation per reset. */
#ifndef KVMINI_TESTS_FUZZ_FAKE_DEV_H
#define KVMINI_TESTS_FUZZ_FAKE_DEV_H

#include <stdbool.h>

#include "kvmini/bus.h"
#include "kvmini/virtio.h"
#include "fuzz_common.h"

#define FAKE_NQ 2
#define FAKE_QSIZE 16
#define FAKE_CFG_LEN 8
/* The transport targets' guest RAM: small, so the shadow compare is cheap. */
#define FAKE_RAM_SIZE   (256u << 10)
#define FAKE_DATA_START 0x20000u

extern bool fake_host_fails;   /* host calls fail while set */
extern int fake_routes;        /* MSI routes currently held */
extern const struct virtio_dev_ops fake_dev_ops;
extern const struct irq_sink fake_sink;

/* Per input: the device @dev (not yet created) over @r's memory, config
 * bytes back to their start, host working, no routes, no ioeventfds. */
void fake_reset(struct fr *r, struct virtio_dev *dev);
/* Fills in the host calls @hostcfg asks for: bit 0 MSI routing, bit 1
 * ioeventfds. */
void fake_host_calls(struct virtio_host *host, uint8_t hostcfg);
/* Device-side events for op 0xf0..0xff: a completion (or just an
 * interrupt) on queue op & 1 (0xf0-0xf7), a device failure (0xf8-0xfb),
 * or host failure toggled. */
void fake_device_event(struct virtio_dev *dev, uint8_t op);

/* The driver side: posts a chain the input describes on queue @q where
 * the device has it configured (nothing when the queue is not enabled). */
void fake_post(struct virtio_dev *dev, unsigned q, struct fz *f);
/* A guest MMIO write as KVM handles it: taken by an assigned ioeventfd
 * (address, length or any length, datamatch) without reaching @bus, or
 * dispatched. */
void fake_kvm_write(struct bus *bus, uint64_t addr, uint64_t v, unsigned len);
/* Assigned ioeventfds within [@base, @base + @len). */
unsigned fake_ioeventfds_in(uint64_t base, uint64_t len);

/* Around every step of an input (see above). */
void fake_step_begin(void);
void fake_step_end(void);
/* After the transport is destroyed: nothing left behind. */
void fake_check_teardown(void);

#endif
