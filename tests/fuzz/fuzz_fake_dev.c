/* The fake device and host behind the transport fuzz targets: see
 * fuzz_fake_dev.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_fake_dev.h"

bool fake_host_fails;
int fake_routes;
static uint8_t fake_config[FAKE_CFG_LEN];

static void fd_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= FAKE_CFG_LEN);
	memcpy(data, fake_config + off, len);
}

static void fd_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	FUZZ_CHECK(off + len <= FAKE_CFG_LEN);
	memcpy(fake_config + off, data, len);
}

static int fd_activate(struct virtio_dev *d)
{
	return 0;
}

static void fd_queue_notify(struct virtio_dev *d, unsigned q)
{
	FUZZ_CHECK(q < FAKE_NQ);
}

static void fd_reset(struct virtio_dev *d)
{
}

const struct virtio_dev_ops fake_dev_ops = {
	.config_read = fd_config_read, .config_write = fd_config_write,
	.activate = fd_activate, .queue_notify = fd_queue_notify, .reset = fd_reset,
};

static int fh_msi_route(void *ctx, int *gsi, uint64_t addr, uint32_t data, int fd)
{
	if (fake_host_fails)
		return -ENOSPC;
	if (*gsi < 0) {         /* a new route; >= 0 updates one */
		*gsi = 24 + fake_routes;
		fake_routes++;
	}
	return 0;
}

static void fh_msi_unroute(void *ctx, int gsi, int fd)
{
	FUZZ_CHECK(gsi >= 24);
	fake_routes--;
}

static int fh_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			bool assign)
{
	return fake_host_fails ? -EINVAL : 0;
}

static int sink_set_level(void *ctx, unsigned gsi, int level)
{
	return 0;
}

const struct irq_sink fake_sink = { sink_set_level, NULL };

void fake_reset(void)
{
	memcpy(fake_config, "\x11\x22\x33\x44\x55\x66\x77\x88", FAKE_CFG_LEN);
	fake_host_fails = false;
	fake_routes = 0;
}

void fake_host_calls(struct virtio_host *host, uint8_t hostcfg)
{
	if (hostcfg & 1) {
		host->msi_route = fh_msi_route;
		host->msi_unroute = fh_msi_unroute;
	}
	if (hostcfg & 2)
		host->ioeventfd = fh_ioeventfd;
}

void fake_device_event(struct virtio_dev *dev, uint8_t op)
{
	pthread_mutex_lock(&dev->lock);
	if (op < 0xf8)
		virtio_dev_used(dev, op & 1);
	else if (op < 0xfc)
		virtio_dev_fail(dev, "fuzz: device failure %d", op);
	else
		fake_host_fails = !fake_host_fails;
	pthread_mutex_unlock(&dev->lock);
}
