/* virtio-net without a tap: the device runs on one end of a SOCK_SEQPACKET
 * socketpair, which keeps packet boundaries like a tap (one record per
 * read, excess discarded); the test plays the network on the other end
 * and the guest driver through drv_ring.h. The event-loop callback is
 * called directly (the loop exists but its thread is not started). */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/net_backend.h"
#include "kvmini/virtio_net.h"
#include "../../check_main.h"
#include "drv_ring.h"

#define RXQ 0
#define TXQ 1
#define F_CSUM       (1ull << 0)
#define F_GUEST_CSUM (1ull << 1)
#define F_MTU        (1ull << 3)
#define F_MAC        (1ull << 5)
#define F_GUEST_TSO4 (1ull << 7)
#define F_HOST_TSO4  (1ull << 11)
#define F_MRG_RXBUF  (1ull << 15)
#define F_STATUS     (1ull << 16)
#define F_CTRL_VQ    (1ull << 17)

static struct drv drv;
static struct virtio_dev dev;
static struct evloop *loop;
static int net_fd;      /* the device's end */
static int peer;        /* the "network" */

static void create(const struct virtio_net_cfg *cfg, unsigned offloads)
{
	struct kv_err e = { 0 };
	struct net_backend *be;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	net_fd = sv[0];
	peer = sv[1];
	ck_assert_int_eq(net_packet_backend_new(net_fd, offloads, "test socket", &be, &e), 0);
	ck_assert_int_eq(virtio_net_create(cfg, be, &drv.gm, loop, &dev, &e), 0);
}

static void setup(void)
{
	struct virtio_net_cfg cfg = { .mac = { 0x52, 0x54, 0, 1, 2, 3 },
				      .mac_set = true };
	struct kv_err e = { 0 };

	drv_init(&drv);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	create(&cfg, 0);
}

static void teardown(void)
{
	virtio_dev_fini(&dev);
	close(peer);
	evloop_destroy(loop);
	drv_fini(&drv);
}

static uint8_t pattern(size_t i, unsigned seed)
{
	return (uint8_t)(i * 7 + seed);
}

/* The network sends a packet of @len bytes (vnet header included) whose
 * num_buffers field is garbage the device must overwrite. */
static void net_send(size_t len, unsigned seed)
{
	static uint8_t pkt[VNET_MAX_PACKET];

	for (size_t i = 0; i < len; i++)
		pkt[i] = pattern(i, seed);
	pkt[10] = pkt[11] = 0xee;
	ck_assert_int_eq(send(peer, pkt, len, 0), (ssize_t)len);
}

static void tap_event(uint32_t events)
{
	virtio_net_backend_event(&dev, events);
}

/* Checks that the packet of @len bytes with @seed came in the @n chains
 * at @gpa[] (each @buflen long), num_buffers = @n. */
static void check_rx(const uint64_t *gpa, unsigned n, uint32_t buflen, size_t len,
		     unsigned seed)
{
	size_t off = 0;
	uint16_t nb;

	for (unsigned c = 0; c < n; c++) {
		uint32_t id, used_len;
		const uint8_t *p = drv_host(&drv, gpa[c]);

		ck_assert(drv_used(&drv, RXQ, &id, &used_len));
		ck_assert_uint_eq(used_len, len - off < buflen ? len - off : buflen);
		for (uint32_t i = 0; i < used_len; i++, off++)
			if (off != 10 && off != 11)
				ck_assert_uint_eq(p[i], pattern(off, seed));
	}
	ck_assert_uint_eq(off, len);
	memcpy(&nb, (uint8_t *)drv_host(&drv, gpa[0]) + 10, 2);
	ck_assert_uint_eq(le16toh(nb), n);
}

/* ---- identity ---- */

START_TEST(config_space)
{
	uint8_t cfg[12];

	ck_assert_uint_eq(dev.device_id, VIRTIO_ID_NET);
	ck_assert_uint_eq(dev.nr_queues, 2);
	/* mac, status, max_virtqueue_pairs, mtu (valid only with F_MTU,
	 * which a packet backend does not offer) */
	ck_assert_uint_eq(dev.config_len, 12);
	ck_assert_uint_eq(dev.features & F_MTU, 0);
	dev.ops->config_read(&dev, 0, cfg, 12);
	ck_assert_mem_eq(cfg, "\x52\x54\x00\x01\x02\x03", 6);
	ck_assert_uint_eq(cfg[6] | cfg[7] << 8, 1);     /* LINK_UP */
	ck_assert_uint_eq(cfg[8] | cfg[9] << 8, 1);     /* one queue pair */
	dev.ops->config_read(&dev, 7, cfg, 2);          /* unaligned piece */
	ck_assert_uint_eq(cfg[0], 0);
	ck_assert_uint_eq(cfg[1], 1);
	/* the driver cannot change it */
	dev.ops->config_write(&dev, 0, "\xff\xff", 2);
	dev.ops->config_read(&dev, 0, cfg, 1);
	ck_assert_uint_eq(cfg[0], 0x52);
}
END_TEST

START_TEST(features_follow_the_tap)
{
	struct virtio_net_cfg cfg = { 0 };
	unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

	ck_assert_uint_eq(dev.features & (F_MAC | F_STATUS | F_MRG_RXBUF),
			  F_MAC | F_STATUS | F_MRG_RXBUF);
	ck_assert_uint_eq(dev.features & F_CTRL_VQ, 0);
	/* no offloads accepted: none offered */
	ck_assert_uint_eq(dev.features & (F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4 | F_HOST_TSO4), 0);
	ck_assert(dev.features & (1ull << VIRTIO_F_VERSION_1));

	virtio_dev_fini(&dev);
	close(peer);
	create(&cfg, offloads);
	ck_assert_uint_eq(dev.features & (F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4 | F_HOST_TSO4),
			  F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4 | F_HOST_TSO4);
	ck_assert_uint_eq(dev.features & (1ull << 10 | 1ull << 14), 0);   /* no UFO */
}
END_TEST

START_TEST(random_mac_is_local_unicast)
{
	struct virtio_net_cfg cfg = { .index = 3 };
	uint8_t a[6], b[6];

	virtio_dev_fini(&dev);
	close(peer);
	create(&cfg, 0);
	ck_assert_str_eq(dev.name, "virtio-net3");
	dev.ops->config_read(&dev, 0, a, 6);
	virtio_dev_fini(&dev);
	close(peer);
	create(&cfg, 0);
	dev.ops->config_read(&dev, 0, b, 6);
	ck_assert_uint_eq(a[0] & 1, 0);         /* unicast */
	ck_assert_uint_eq(a[0] & 2, 2);         /* locally administered */
	ck_assert_uint_eq(b[0] & 3, 2);
	ck_assert(memcmp(a, b, 6) != 0);        /* 2^-46 to fail by chance */
}
END_TEST

/* ---- transmit ---- */

START_TEST(tx_header_and_packet_pass_through)
{
	struct drv_seg s[3];
	uint8_t got[256];
	uint32_t id, len;
	uint16_t head;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	s[0] = (struct drv_seg){ drv_alloc(&drv, 12), 12, false };
	s[1] = (struct drv_seg){ drv_alloc(&drv, 50), 50, false };
	s[2] = (struct drv_seg){ drv_alloc(&drv, 30), 30, false };
	for (unsigned i = 0; i < 3; i++)
		memset(drv_host(&drv, s[i].gpa), 'a' + i, s[i].len);
	head = drv_post(&drv, TXQ, s, 3);
	drv_kick(&drv, TXQ);

	ck_assert_int_eq(recv(peer, got, sizeof(got), MSG_DONTWAIT), 92);
	ck_assert_uint_eq(got[0], 'a');
	ck_assert_uint_eq(got[11], 'a');
	ck_assert_uint_eq(got[12], 'b');
	ck_assert_uint_eq(got[61], 'b');
	ck_assert_uint_eq(got[62], 'c');
	ck_assert_uint_eq(got[91], 'c');
	ck_assert(drv_used(&drv, TXQ, &id, &len));
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_ge(drv.irqs[TXQ], 1);
}
END_TEST

START_TEST(tx_bad_chains_dropped)
{
	struct drv_seg s[2];
	uint8_t got[256];

	drv_attach(&drv, &dev, 0);
	/* writable part */
	s[0] = (struct drv_seg){ drv_alloc(&drv, 40), 40, false };
	s[1] = (struct drv_seg){ drv_alloc(&drv, 40), 40, true };
	drv_post(&drv, TXQ, s, 2);
	/* shorter than the header */
	drv_post1(&drv, TXQ, 11, false, NULL);
	/* longer than header + 64 KiB frame */
	drv_post1(&drv, TXQ, VNET_MAX_PACKET + 1, false, NULL);
	/* a good one after them */
	memset(drv_host(&drv, drv_post1(&drv, TXQ, 60, false, NULL)), 'g', 60);
	drv_kick(&drv, TXQ);

	ck_assert_int_eq(recv(peer, got, sizeof(got), MSG_DONTWAIT), 60);
	ck_assert_uint_eq(got[59], 'g');
	ck_assert(recv(peer, got, sizeof(got), MSG_DONTWAIT) < 0);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 4);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

/* A full tap (EAGAIN) keeps the chain until EPOLLOUT; nothing lost. */
START_TEST(tx_eagain_waits_for_epollout)
{
	static uint8_t big[8192];
	uint8_t got[256];
	unsigned filled = 0;

	drv_attach(&drv, &dev, 0);
	while (send(net_fd, big, sizeof(big), MSG_DONTWAIT) > 0)
		filled++;
	ck_assert_int_eq(errno, EAGAIN);
	memset(drv_host(&drv, drv_post1(&drv, TXQ, 70, false, NULL)), 'q', 70);
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 0);
	/* another kick while blocked does not spin or reorder */
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 0);

	for (unsigned i = 0; i < filled; i++)
		ck_assert_int_eq(recv(peer, big, sizeof(big), 0), sizeof(big));
	tap_event(EPOLLOUT);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 1);
	ck_assert_int_eq(recv(peer, got, sizeof(got), MSG_DONTWAIT), 70);
	ck_assert_uint_eq(got[69], 'q');
}
END_TEST

/* ---- receive ---- */

START_TEST(rx_mergeable_splits_a_large_packet)
{
	uint64_t gpa[60];

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < 60; i++)
		gpa[i] = drv_post1(&drv, RXQ, 1536, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(5000, 1);
	net_send(100, 2);
	tap_event(EPOLLIN);
	check_rx(gpa, 4, 1536, 5000, 1);
	check_rx(gpa + 4, 1, 1536, 100, 2);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	ck_assert_uint_ge(drv.irqs[RXQ], 1);

	/* the largest packet: 12 + 65550 bytes in 43 buffers */
	net_send(VNET_MAX_PACKET, 3);
	tap_event(EPOLLIN);
	check_rx(gpa + 5, 43, 1536, VNET_MAX_PACKET, 3);
}
END_TEST

/* Fewer buffers than the largest packet: the packet waits in the device
 * until the guest posts enough, then arrives whole. */
START_TEST(rx_mergeable_waits_for_buffers)
{
	uint64_t gpa[8];

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < 3; i++)
		gpa[i] = drv_post1(&drv, RXQ, 1000, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(1500, 4);
	tap_event(EPOLLIN);
	check_rx(gpa, 2, 1000, 1500, 4);

	net_send(2500, 5);
	tap_event(EPOLLIN);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	for (unsigned i = 3; i < 5; i++)
		gpa[i] = drv_post1(&drv, RXQ, 1000, true, NULL);
	drv_kick(&drv, RXQ);
	check_rx(gpa + 2, 3, 1000, 2500, 5);
}
END_TEST

START_TEST(rx_without_mergeable)
{
	uint64_t small, big;

	drv_attach(&drv, &dev, 0);
	ck_assert(!(dev.driver_features & F_MRG_RXBUF));
	big = drv_post1(&drv, RXQ, VNET_MAX_PACKET, true, NULL);
	small = drv_post1(&drv, RXQ, 1526, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(20000, 6);     /* direct into the big buffer */
	net_send(1526, 7);      /* through the bounce buffer */
	net_send(1527, 8);      /* larger than the small buffer: dropped */
	tap_event(EPOLLIN);
	check_rx(&big, 1, VNET_MAX_PACKET, 20000, 6);
	check_rx(&small, 1, 1526, 1526, 7);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	/* the 1527-byte packet waited for a buffer; this one is too small */
	small = drv_post1(&drv, RXQ, 1526, true, NULL);
	drv_kick(&drv, RXQ);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	net_send(100, 9);
	tap_event(EPOLLIN);
	check_rx(&small, 1, 1526, 100, 9);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

/* No buffers: the packet stays in the tap (not read, not lost) until the
 * guest posts one and kicks. */
START_TEST(rx_no_buffers_leaves_packet_in_tap)
{
	uint64_t gpa;
	uint8_t b;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	net_send(64, 9);
	tap_event(EPOLLIN);
	ck_assert_int_eq(recv(net_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT), 1);
	gpa = drv_post1(&drv, RXQ, 2048, true, NULL);
	drv_kick(&drv, RXQ);
	check_rx(&gpa, 1, 2048, 64, 9);
}
END_TEST

/* A receive chain with a readable part or too short for the header is
 * returned unused; the packet goes to the next good one. */
START_TEST(rx_bad_chains_returned_unused)
{
	struct drv_seg s[2];
	uint32_t id, len;
	uint16_t bad1, bad2;
	uint64_t good;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	s[0] = (struct drv_seg){ drv_alloc(&drv, 100), 100, false };
	s[1] = (struct drv_seg){ drv_alloc(&drv, 2000), 2000, true };
	bad1 = drv_post(&drv, RXQ, s, 2);
	drv_post1(&drv, RXQ, 11, true, &bad2);
	good = drv_post1(&drv, RXQ, 2000, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(300, 10);
	tap_event(EPOLLIN);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(id, bad1);
	ck_assert_uint_eq(len, 0);
	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(id, bad2);
	ck_assert_uint_eq(len, 0);
	check_rx(&good, 1, 2000, 300, 10);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

START_TEST(rx_broken_ring_needs_reset)
{
	struct drv_seg s = { DRV_RAM_SIZE - 100, 2000, true };

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	drv_post(&drv, RXQ, &s, 1);
	drv_kick(&drv, RXQ);
	ck_assert(!virtio_dev_live(&dev));
	ck_assert(dev.status & VIRTIO_CONFIG_S_NEEDS_RESET);
	net_send(64, 11);
	tap_event(EPOLLIN);     /* harmless after the failure */

	pthread_mutex_lock(&dev.lock);
	virtio_dev_set_status(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	ck_assert_uint_eq(dev.status, 0);
}
END_TEST

START_TEST(tx_broken_ring_needs_reset)
{
	uint16_t *avail;

	drv_attach(&drv, &dev, 0);
	avail = drv_host(&drv, drv.q[TXQ].avail);
	avail[2] = 4000;        /* head beyond the queue size */
	avail[1] = 1;
	drv_kick(&drv, TXQ);
	ck_assert(!virtio_dev_live(&dev));
	ck_assert_uint_ge(drv.config_irqs, 1);
	drv_kick(&drv, TXQ);    /* ignored now */
}
END_TEST

/* With EVENT_IDX, running dry re-arms avail_event so the guest's next
 * receive buffer kicks us (else it never would). */
START_TEST(rx_event_idx_rearmed_when_dry)
{
	uint16_t *avail_event;
	uint64_t gpa;

	drv_attach(&drv, &dev, F_MRG_RXBUF | (1ull << VIRTIO_RING_F_EVENT_IDX));
	ck_assert(dev.vqs[RXQ].event_idx);
	avail_event = (uint16_t *)drv_host(&drv, drv.q[RXQ].used + 4 + 8 * drv.q[RXQ].size);
	gpa = drv_post1(&drv, RXQ, 2048, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(80, 14);
	tap_event(EPOLLIN);
	check_rx(&gpa, 1, 2048, 80, 14);
	/* the stash is empty now: kick me at the next buffer */
	ck_assert_uint_eq(*avail_event, 1);
}
END_TEST

/* Reset forgets stashed buffers and a waiting packet; the next driver
 * starts clean. */
START_TEST(reset_forgets_state)
{
	uint64_t gpa;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	drv_post1(&drv, RXQ, 1000, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(3000, 12);
	tap_event(EPOLLIN);     /* waits: 1000 < 3000 */
	pthread_mutex_lock(&dev.lock);
	virtio_dev_set_status(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	tap_event(EPOLLIN);     /* not live: reads nothing */

	memset(&drv.q, 0, sizeof(drv.q));
	memset(drv.ram, 0, 0x80000);
	drv.data_next = DRV_DATA_START;
	drv_attach(&drv, &dev, F_MRG_RXBUF);
	gpa = drv_post1(&drv, RXQ, 4096, true, NULL);
	drv_kick(&drv, RXQ);
	net_send(200, 13);
	tap_event(EPOLLIN);
	check_rx(&gpa, 1, 4096, 200, 13);
}
END_TEST

/* ---- opening taps: the messages (no privileges needed) ---- */

START_TEST(tap_name_errors)
{
	struct tap_caps caps;
	struct kv_err e = { 0 };

	ck_assert_int_eq(tap_open("a-name-way-too-long", &caps, &e), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(strstr(e.msg, "a-name-way-too-long"));
	ck_assert_ptr_nonnull(strstr(e.msg, "too long"));
	ck_assert_ptr_nonnull(strstr(e.msg, "15"));
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(tap_open("tap%d", &caps, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "tap%d"));
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(tap_open("", &caps, &e), -EINVAL);
	ck_assert_int_ne(e.msg[0], 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *tc = tcase_create("net");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, config_space);
	tcase_add_test(tc, features_follow_the_tap);
	tcase_add_test(tc, random_mac_is_local_unicast);
	tcase_add_test(tc, tx_header_and_packet_pass_through);
	tcase_add_test(tc, tx_bad_chains_dropped);
	tcase_add_test(tc, tx_eagain_waits_for_epollout);
	tcase_add_test(tc, rx_mergeable_splits_a_large_packet);
	tcase_add_test(tc, rx_mergeable_waits_for_buffers);
	tcase_add_test(tc, rx_without_mergeable);
	tcase_add_test(tc, rx_no_buffers_leaves_packet_in_tap);
	tcase_add_test(tc, rx_bad_chains_returned_unused);
	tcase_add_test(tc, rx_broken_ring_needs_reset);
	tcase_add_test(tc, tx_broken_ring_needs_reset);
	tcase_add_test(tc, rx_event_idx_rearmed_when_dry);
	tcase_add_test(tc, reset_forgets_state);
	tcase_add_test(tc, tap_name_errors);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
