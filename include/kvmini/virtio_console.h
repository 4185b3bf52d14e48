/* virtio-console (devices/virtio/console.c). */
#ifndef KVMINI_VIRTIO_CONSOLE_H
#define KVMINI_VIRTIO_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/err.h"
#include "kvmini/virtio.h"

struct evloop;

/* virtio-console (one port, hvc0): guest output to @out_fd; input from
 * virtio_console_receive. */
struct virtio_console_cfg {
	int out_fd;
};
int virtio_console_create(const struct virtio_console_cfg *cfg, const struct guest_mem *mem,
			  struct evloop *loop, struct virtio_dev *dev,
			  struct kv_err *e) KV_MUST_CHECK;
/* Queues input bytes for the guest (any thread); returns how many were
 * taken (0 when the guest has posted no receive buffers: try later). */
size_t virtio_console_receive(struct virtio_dev *dev, const uint8_t *buf, size_t n);
/* True once the driver is live and has receive buffers (so input sent
 * now is not lost). */
bool virtio_console_rx_ready(struct virtio_dev *dev);
/* The device writes 1 (8 bytes) to eventfd @fd (-1: none) when the
 * guest posts receive buffers or the driver goes live, so a reader
 * holding input can retry. Any thread. */
void virtio_console_set_rx_wakeup(struct virtio_dev *dev, int fd);
/* The user's terminal is @cols x @rows (0 x 0: unknown). The guest's
 * driver is told at once when live (config change), else at probe.
 * Any thread. */
void virtio_console_set_size(struct virtio_dev *dev, unsigned cols, unsigned rows);

#endif
