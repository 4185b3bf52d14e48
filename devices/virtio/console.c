/* virtio-console (virtio 1.x §5.3), one port (hvc0), no MULTIPORT:
 * queue 0 receives (host -> guest), queue 1 transmits. F_SIZE carries the
 * user's terminal size (cols, rows in the config space; a config-change
 * interrupt when it changes), so the guest's tty gets it.
 *
 * Transmit runs on the event-loop thread (queue_notify, lock held) and
 * writes the guest's bytes to out_fd. Receive is pushed from the
 * terminal reader's thread through virtio_console_receive, which takes
 * the lock itself; when the guest posts receive buffers the device
 * writes 1 to the rx-wakeup eventfd so that reader can retry input it
 * could not deliver.
 *
 * Work per call is bounded by the ring size in both directions.
 *
 * Guest mistakes: a ring rule broken puts the device into NEEDS_RESET;
 * a chain of the wrong shape (writable parts on transmit, readable parts
 * on receive) is returned unused and logged, rate-limited. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvmini/virtio_console.h"

#define RXQ 0
#define TXQ 1
#define CONSOLE_QUEUE_SIZE 128

/* cols (le16), rows (le16), max_nr_ports (le32, 0: no MULTIPORT). */
#define CONSOLE_CONFIG_LEN 8
#define VIRTIO_CONSOLE_F_SIZE 0

struct vcon {
	int out_fd;
	int rx_wakeup_fd;       /* -1: none */
	struct iovec iov[VIRTQ_MAX_SIZE];
	unsigned long tx_dropped;
	uint16_t cols, rows;    /* 0: unknown (not a terminal) */
};

static struct vcon *to_vcon(struct virtio_dev *d)
{
	return d->priv;
}

static void con_wake_reader(struct vcon *c)
{
	uint64_t one = 1;

	/* An eventfd write fails only when the counter is about to
	 * overflow: the reader is then woken already. */
	if (c->rx_wakeup_fd >= 0 && write(c->rx_wakeup_fd, &one, sizeof(one)) < 0 &&
	    errno != EAGAIN)
		LOG_DEBUG("virtio-console: rx wakeup: %s", strerror(errno));
}

/* Writes all of @iov to out_fd. Output that cannot go now (EAGAIN: a
 * non-blocking terminal is full; EPIPE: nobody reads) is dropped, so a
 * guest never makes the loop wait or spin. */
static void con_write_out(struct virtio_dev *dev, struct vcon *c, struct iovec *iov,
			  unsigned cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(c->out_fd, iov, (int)cnt);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			c->tx_dropped++;
			LOG_GUEST(&dev->rl, "%s: output dropped: %s (%lu chains)", dev->name,
				  w < 0 ? strerror(errno) : "nothing written", c->tx_dropped);
			return;
		}
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			/* A partial write: the copy of the iovec is ours to
			 * advance (it is not guest memory). */
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
}

static void con_tx(struct virtio_dev *dev)
{
	struct vcon *c = to_vcon(dev);
	struct virtq *vq = &dev->vqs[TXQ];
	unsigned budget = vq->size;
	bool pushed = false;

	vq_disable_kicks(vq);
	for (;;) {
		if (budget-- == 0) {
			/* A ring's worth per call: the guest may keep posting;
			 * the loop's other work (and the stop) goes first. */
			virtio_dev_requeue(dev, TXQ);
			break;
		}
		struct vq_chain ch;
		int r = vq_pop(vq, &ch, c->iov, VIRTQ_MAX_SIZE);

		if (r < 0) {
			virtio_dev_fail(dev, "transmit queue: %s", vq->error);
			break;
		}
		if (r == 0) {
			if (vq_enable_kicks(vq))
				continue;
			break;
		}
		if (ch.nr_in) {
			c->tx_dropped++;
			LOG_GUEST(&dev->rl, "%s: transmit chain %u has device-writable parts: "
				  "dropped", dev->name, ch.head);
		} else {
			con_write_out(dev, c, ch.iov, ch.nr_out);
		}
		if (vq_push(vq, ch.head, 0) < 0) {
			virtio_dev_fail(dev, "transmit queue: %s", vq->error);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(dev, TXQ);
}

static void con_queue_notify(struct virtio_dev *dev, unsigned q)
{
	if (!virtio_dev_live(dev))
		return;
	if (q == TXQ)
		con_tx(dev);
	else if (q == RXQ)
		con_wake_reader(to_vcon(dev));
}

size_t virtio_console_receive(struct virtio_dev *dev, const uint8_t *buf, size_t n)
{
	struct virtq *vq = &dev->vqs[RXQ];
	struct vcon *c = to_vcon(dev);
	bool pushed = false;
	size_t taken = 0;
	unsigned budget;

	pthread_mutex_lock(&dev->lock);
	/* The terminal's thread also takes signals: a ring's worth of chains
	 * per call, whatever the guest posts (chains that take nothing, say),
	 * and the terminal retries what was not taken. */
	budget = vq->size;
	while (taken < n && budget-- > 0 && virtio_dev_live(dev) && vq->enabled) {
		struct vq_chain ch;
		size_t w;
		int r = vq_pop(vq, &ch, c->iov, VIRTQ_MAX_SIZE);

		if (r < 0) {
			virtio_dev_fail(dev, "receive queue: %s", vq->error);
			break;
		}
		if (r == 0) {
			/* Out of buffers: with EVENT_IDX the guest kicks (and
			 * we wake the reader) only once avail_event is re-armed. */
			if (vq_enable_kicks(vq))
				continue;
			break;
		}
		w = 0;
		if (ch.nr_out)
			LOG_GUEST(&dev->rl, "%s: receive chain %u has device-readable parts: "
				  "returned unused", dev->name, ch.head);
		else
			w = vq_chain_write(&ch, 0, buf + taken, n - taken);
		taken += w;
		if (vq_push(vq, ch.head, (uint32_t)w) < 0) {
			virtio_dev_fail(dev, "receive queue: %s", vq->error);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_dev_used(dev, RXQ);
	pthread_mutex_unlock(&dev->lock);
	return taken;
}

bool virtio_console_rx_ready(struct virtio_dev *dev)
{
	bool ready;

	pthread_mutex_lock(&dev->lock);
	/* When not ready, re-arm kicks so the guest's next buffer wakes the
	 * reader (vq_enable_kicks also answers "anything available?"). */
	ready = virtio_dev_live(dev) && dev->vqs[RXQ].enabled &&
		(vq_has_avail(&dev->vqs[RXQ]) || vq_enable_kicks(&dev->vqs[RXQ]));
	pthread_mutex_unlock(&dev->lock);
	return ready;
}

void virtio_console_set_rx_wakeup(struct virtio_dev *dev, int fd)
{
	pthread_mutex_lock(&dev->lock);
	to_vcon(dev)->rx_wakeup_fd = fd;
	pthread_mutex_unlock(&dev->lock);
}

/* The driver takes the size from the config space: tell it of a change. */
static void size_changed(struct virtio_dev *dev)
{
	if (dev->driver_features & (1ull << VIRTIO_CONSOLE_F_SIZE))
		virtio_dev_config_changed(dev);
}

static void con_config_read(struct virtio_dev *dev, uint32_t off, void *data, unsigned len)
{
	struct vcon *c = to_vcon(dev);
	uint8_t img[CONSOLE_CONFIG_LEN] = {
		(uint8_t)c->cols, (uint8_t)(c->cols >> 8), (uint8_t)c->rows, (uint8_t)(c->rows >> 8),
	};

	/* The transport keeps off + len within CONSOLE_CONFIG_LEN. */
	memcpy(data, img + off, len);
}

void virtio_console_set_size(struct virtio_dev *dev, unsigned cols, unsigned rows)
{
	struct vcon *c = to_vcon(dev);

	cols = cols > UINT16_MAX ? UINT16_MAX : cols;
	rows = rows > UINT16_MAX ? UINT16_MAX : rows;
	pthread_mutex_lock(&dev->lock);
	if (c->cols != cols || c->rows != rows) {
		c->cols = (uint16_t)cols;
		c->rows = (uint16_t)rows;
		/* A driver that took F_SIZE reads it again on the interrupt;
		 * before DRIVER_OK it reads it at probe anyway. */
		if (virtio_dev_live(dev))
			size_changed(dev);
	}
	pthread_mutex_unlock(&dev->lock);
}

static void con_config_write(struct virtio_dev *dev, uint32_t off, const void *data,
			     unsigned len)
{
	/* emerg_wr is not offered (no VIRTIO_CONSOLE_F_EMERG_WRITE). */
}

static int con_activate(struct virtio_dev *dev)
{
	struct vcon *c = to_vcon(dev);

	/* Buffers posted before DRIVER_OK became usable just now. */
	con_wake_reader(c);
	/* Linux reads the size on a config change only: tell it now. */
	if (c->cols || c->rows)
		size_changed(dev);
	return 0;
}

static void con_reset(struct virtio_dev *dev)
{
	/* Nothing in flight: chains never outlive one call. */
}

static void con_destroy(struct virtio_dev *dev)
{
	free(dev->priv);
	dev->priv = NULL;
}

static const struct virtio_dev_ops con_ops = {
	.config_read = con_config_read,
	.config_write = con_config_write,
	.activate = con_activate,
	.queue_notify = con_queue_notify,
	.reset = con_reset,
	.destroy = con_destroy,
};

int virtio_console_create(const struct virtio_console_cfg *cfg, const struct guest_mem *mem,
			  struct evloop *loop, struct virtio_dev *dev, struct kv_err *e)
{
	struct vcon *c = calloc(1, sizeof(*c));

	if (!c)
		return kv_err_set(e, -ENOMEM, "virtio-console: out of memory");
	c->out_fd = cfg->out_fd;
	c->rx_wakeup_fd = -1;
	virtio_dev_init(dev, "virtio-console0", VIRTIO_ID_CONSOLE, 1ull << VIRTIO_CONSOLE_F_SIZE, 2,
			CONSOLE_QUEUE_SIZE,
			CONSOLE_CONFIG_LEN, &con_ops, c, mem, loop);
	return 0;
}
