/* The virtio-mmio suites' fixture: see mmio_fixture.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmio_fixture.h"

struct mmio_fixture t;

static void fake_config_read(struct virtio_dev *d, uint32_t off, void *data, unsigned len)
{
	ck_assert_uint_le(off + len, CONFIG_LEN);
	memcpy(data, t.fd.config + off, len);
}

static void fake_config_write(struct virtio_dev *d, uint32_t off, const void *data, unsigned len)
{
	ck_assert_uint_le(off + len, CONFIG_LEN);
	memcpy(t.fd.config + off, data, len);
}

static int fake_activate(struct virtio_dev *d)
{
	t.fd.activations++;
	return 0;
}

static void fake_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct iovec iov[4];
	struct vq_chain c;

	ck_assert_uint_lt(q, NR_QUEUES);
	while (t.fd.hold && t.fd.nr_held[q] < 8 && vq_pop(&d->vqs[q], &c, iov, 4) == 1)
		t.fd.held[q][t.fd.nr_held[q]++] = c.head;
	atomic_fetch_add(&t.fd.kicks[q], 1);
}

/* "I/O completes": every held chain goes to the used ring. */
void fake_complete(struct virtio_dev *d, unsigned q)
{
	for (unsigned i = 0; i < t.fd.nr_held[q]; i++)
		if (vq_push(&d->vqs[q], t.fd.held[q][i], 0) == 0)
			virtio_dev_used(d, q);
	t.fd.nr_held[q] = 0;
}

static void fake_reset(struct virtio_dev *d)
{
	t.fd.resets++;
	for (unsigned q = 0; q < NR_QUEUES; q++)
		t.fd.nr_held[q] = 0;
}

/* QueueReady = 0: the requests in flight complete before it returns. */
static void fake_queue_stop(struct virtio_dev *d, unsigned q)
{
	t.fd.stops[q]++;
	t.fd.enabled_during_stop = d->vqs[q].enabled;
	fake_complete(d, q);
}

const struct virtio_dev_ops fake_ops = {
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.activate = fake_activate,
	.queue_notify = fake_queue_notify,
	.reset = fake_reset,
	.queue_stop = fake_queue_stop,
};

static int fake_ioeventfd(void *ctx, uint64_t addr, unsigned len, int64_t datamatch, int fd,
			  bool assign)
{
	struct fake_ioevent *ev;

	ck_assert(datamatch >= 0 && datamatch < NR_QUEUES);
	ev = &t.ioev[datamatch];

	if (assign) {
		ck_assert(!ev->assigned);
		*ev = (struct fake_ioevent){ addr, len, datamatch, fd, true };
		t.ioev_assigns++;
	} else {
		ck_assert(ev->assigned);
		ck_assert_uint_eq(ev->addr, addr);
		ck_assert_uint_eq(ev->len, len);
		ck_assert_int_eq(ev->fd, fd);
		ev->assigned = false;
		t.ioev_deassigns++;
	}
	return 0;
}

static void setup_with(bool ioeventfd)
{
	struct kv_err e = { 0 };

	memset(&t, 0, sizeof(t));
	t.ram = calloc(1, RAM_SIZE);
	ck_assert_ptr_nonnull(t.ram);
	ck_assert_int_eq(gm_add_region(&t.gm, 0, RAM_SIZE, t.ram), 0);
	bus_init(&t.mmio, BUS_MMIO);
	t.sink = fake_irq_sink(&t.irq);
	ck_assert_int_eq(evloop_create(&t.loop, &e), 0);
	ck_assert_int_eq(evloop_start(t.loop, NULL, &e), 0);
	virtio_dev_init(&t.dev, "virtio-test0", 42, DEV_FEATURES, NR_QUEUES, QUEUE_MAX,
			CONFIG_LEN, &fake_ops, &t.fd, &t.gm, t.loop);
	for (unsigned i = 0; i < CONFIG_LEN; i++)
		t.fd.config[i] = (uint8_t)(0x10 + i);
	t.host = (struct virtio_host){
		.mem = &t.gm, .mmio = &t.mmio, .irq = &t.sink, .loop = t.loop,
		.ioeventfd = ioeventfd ? fake_ioeventfd : NULL,
	};
	ck_assert_msg(virtio_mmio_create(&t.host, BASE, GSI, &t.dev, &t.mm, &e) == 0,
		      "%s", e.msg);
}

void setup(void)
{
	setup_with(false);
}

void setup_ioeventfd(void)
{
	setup_with(true);
}

void teardown(void)
{
	virtio_mmio_destroy(t.mm);
	evloop_destroy(t.loop);
	virtio_dev_fini(&t.dev);
	bus_destroy(&t.mmio);
	free(t.ram);
}

/* ---- accesses ---- */

uint64_t rd(uint64_t off, unsigned len)
{
	uint64_t v = 0;

	ck_assert_int_eq(bus_dispatch(&t.mmio, BASE + off, &v, len, false), 0);
	return v;
}

void wr(uint64_t off, unsigned len, uint64_t v)
{
	ck_assert_int_eq(bus_dispatch(&t.mmio, BASE + off, &v, len, true), 0);
}

uint32_t rd32(uint64_t off)
{
	return (uint32_t)rd(off, 4);
}

void wr32(uint64_t off, uint32_t v)
{
	wr(off, 4, v);
}

/* Negotiates VERSION_1 only and sets FEATURES_OK. */
void negotiate(void)
{
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr32(R_DRV_FEATURES_SEL, 1);
	wr32(R_DRV_FEATURES, 1); /* bit 32 */
	wr32(R_DRV_FEATURES_SEL, 0);
	wr32(R_DRV_FEATURES, 0);
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK);
	ck_assert_uint_eq(rd32(R_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_FEATURES_OK);
}

/* Configures queue @q of @size with rings at @desc (avail and used
 * follow) and writes QueueReady = 1. */
void setup_queue(unsigned q, uint32_t size, uint64_t desc)
{
	uint64_t avail = desc + 16ULL * size, used = (avail + 6 + 2ULL * size + 3) & ~3ULL;

	wr32(R_QUEUE_SEL, q);
	wr32(R_QUEUE_NUM, size);
	wr32(R_DESC_LO, (uint32_t)desc);
	wr32(R_DESC_HI, (uint32_t)(desc >> 32));
	wr32(R_DRIVER_LO, (uint32_t)avail);
	wr32(R_DRIVER_HI, (uint32_t)(avail >> 32));
	wr32(R_DEVICE_LO, (uint32_t)used);
	wr32(R_DEVICE_HI, (uint32_t)(used >> 32));
	wr32(R_QUEUE_READY, 1);
}

void driver_ok(void)
{
	wr32(R_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		       VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	ck_assert(virtio_dev_live(&t.dev));
}

/* Kicks the device has seen on queue @q so far. */
int kicks(unsigned q)
{
	return atomic_load(&t.fd.kicks[q]);
}

/* Waits (up to 2 s) for the loop thread to deliver kick number @want to
 * queue @q. */
void wait_kicks(unsigned q, int want)
{
	for (int i = 0; i < 2000 && kicks(q) < want; i++)
		usleep(1000);
	ck_assert_int_eq(kicks(q), want);
}

/* Gives the loop thread time to (wrongly) deliver a kick. */
void settle(void)
{
	usleep(30 * 1000);
}

/* ---- tests ---- */
/* Guest memory as little-endian 16/32-bit fields. */
void ram16(uint64_t gpa, uint16_t v)
{
	memcpy(t.ram + gpa, &v, 2);
}

uint16_t ram16_get(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, t.ram + gpa, 2);
	return v;
}

/* Queue @q of 16 at @desc (as setup_queue lays it out): one writable
 * 64-byte buffer made available as head @head, then a kick. */
void post_and_kick(unsigned q, uint64_t desc, uint16_t head)
{
	uint64_t avail = desc + 16 * 16;
	struct vring_desc d = { .addr = 0x8000, .len = 64, .flags = VRING_DESC_F_WRITE };
	uint16_t idx = ram16_get(avail + 2);

	memcpy(t.ram + desc + 16 * head, &d, sizeof(d));
	ram16(avail + 4 + 2 * (idx % 16), head);
	ram16(avail + 2, (uint16_t)(idx + 1));
	wr32(R_QUEUE_NOTIFY, q);
}

uint64_t used_of(uint64_t desc)
{
	return (desc + 16 * 16 + 6 + 2 * 16 + 3) & ~3ULL;
}
