/* virtio-net on the stream backend (QEMU's stream protocol, as passt
 * speaks it) over a SOCK_STREAM socketpair; the test plays passt on the
 * other end and the guest driver through drv_ring.h, calling the
 * event-loop callback itself.
 *   - the guest is offered no offloads and the peer's MTU;
 *   - a transmitted packet leaves as length + frame, header dropped;
 *     a kick's packets leave in one write, and when the socket is full
 *     they wait (nothing lost, order kept) until EPOLLOUT;
 *   - frames cut anywhere arrive whole, with a zeroed header;
 *   - a bad length from the peer is dropped without losing step;
 *   - the peer closing stops the NIC, not the device: later packets are
 *     dropped and the device stays live. */
#include <check.h>
#include <endian.h>
#include <errno.h>
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
#define F_MRG_RXBUF  (1ull << 15)

static struct drv drv;
static struct virtio_dev dev;
static struct evloop *loop;
static int peer;        /* "passt" */

static void setup(void)
{
	struct virtio_net_cfg cfg = { .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, .mac_set = true };
	struct kv_err e = { 0 };
	struct net_backend *be;
	int sv[2];

	drv_init(&drv);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	peer = sv[1];
	ck_assert_int_eq(net_stream_backend_new(sv[0], 65520, "test stream", NULL, &be, &e), 0);
	ck_assert_int_eq(virtio_net_create(&cfg, be, &drv.gm, loop, &dev, &e), 0);
}

static void teardown(void)
{
	virtio_dev_fini(&dev);
	close(peer);
	evloop_destroy(loop);
	drv_fini(&drv);
}

static void event(uint32_t events)
{
	virtio_net_backend_event(&dev, events);
}

/* A transmitted packet: 12-byte header (garbage the backend must not
 * send) + @flen bytes of frame whose byte i is seed + i. */
static void guest_send(uint32_t flen, uint8_t seed)
{
	uint64_t gpa = drv_post1(&drv, TXQ, 12 + flen, false, NULL);
	uint8_t *p = drv_host(&drv, gpa);

	memset(p, 0xee, 12);
	for (uint32_t i = 0; i < flen; i++)
		p[12 + i] = (uint8_t)(seed + i);
}

/* Reads exactly @len bytes from the peer (blocking up to a second). */
static void peer_read(void *buf, size_t len)
{
	size_t got = 0;

	for (int tries = 0; got < len && tries < 1000; tries++) {
		ssize_t r = recv(peer, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);

		if (r > 0)
			got += (size_t)r;
		else
			usleep(1000);
	}
	ck_assert_uint_eq(got, len);
}

/* Whether @p holds seed, seed + 1, ... (one check, not one per byte). */
static bool pattern_ok(const uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed + i))
			return false;
	return true;
}

static void peer_expect_frame(uint32_t flen, uint8_t seed)
{
	static uint8_t buf[70000];
	uint8_t len[4];

	peer_read(len, 4);
	ck_assert_uint_eq((uint32_t)len[0] << 24 | len[1] << 16 | len[2] << 8 | len[3], flen);
	peer_read(buf, flen);
	ck_assert(pattern_ok(buf, flen, seed));
}

START_TEST(features_without_offloads_with_mtu)
{
	uint16_t mtu;

	ck_assert_uint_eq(dev.features & (F_CSUM | F_GUEST_CSUM), 0);
	ck_assert(dev.features & F_MTU);
	ck_assert(dev.features & F_MRG_RXBUF);
	dev.ops->config_read(&dev, 10, &mtu, 2);
	ck_assert_uint_eq(le16toh(mtu), 65520);
}
END_TEST

START_TEST(tx_frames_leave_length_prefixed)
{
	drv_attach(&drv, &dev, F_MRG_RXBUF);
	guest_send(60, 1);
	guest_send(65534, 2);
	guest_send(14, 3);
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 3);
	peer_expect_frame(60, 1);
	peer_expect_frame(65534, 2);
	peer_expect_frame(14, 3);
	/* too short for an Ethernet header: dropped, the next one goes */
	guest_send(13, 4);
	guest_send(100, 5);
	drv_kick(&drv, TXQ);
	peer_expect_frame(100, 5);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

/* The socket full: packets wait in order for EPOLLOUT, none lost. */
START_TEST(tx_full_socket_waits_for_epollout)
{
	unsigned sent = 0, used;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < 40; i++)
		guest_send(60000, (uint8_t)i);
	drv_kick(&drv, TXQ);
	used = drv_used_count(&drv, TXQ);
	ck_assert_uint_lt(used, 40);    /* a socketpair holds far less than 2.4 MB */
	for (unsigned round = 0; round < 200 && sent < 40; round++) {
		peer_expect_frame(60000, (uint8_t)sent);
		sent++;
		event(EPOLLOUT);
	}
	ck_assert_uint_eq(sent, 40);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 40);
}
END_TEST

static void peer_write(const void *buf, size_t len)
{
	ck_assert_int_eq(send(peer, buf, len, 0), (ssize_t)len);
}

static void peer_frame(uint32_t flen, uint8_t seed, uint8_t *out, size_t *n)
{
	out[*n] = (uint8_t)(flen >> 24);
	out[*n + 1] = (uint8_t)(flen >> 16);
	out[*n + 2] = (uint8_t)(flen >> 8);
	out[*n + 3] = (uint8_t)flen;
	for (uint32_t i = 0; i < flen; i++)
		out[*n + 4 + i] = (uint8_t)(seed + i);
	*n += 4 + flen;
}

/* The next received packet: zeroed header, num_buffers 1, the frame. */
static void guest_expect_rx(const uint64_t *gpa, unsigned idx, uint32_t flen, uint8_t seed)
{
	uint32_t id, len;
	const uint8_t *p = drv_host(&drv, gpa[idx]);

	ck_assert(drv_used(&drv, RXQ, &id, &len));
	ck_assert_uint_eq(len, 12 + flen);
	for (unsigned i = 0; i < 10; i++)
		ck_assert_uint_eq(p[i], 0);
	ck_assert_uint_eq(p[10] | p[11] << 8, 1);
	ck_assert(pattern_ok(p + 12, flen, seed));
}

START_TEST(rx_frames_cut_anywhere_arrive_whole)
{
	static uint8_t wire[4 * 70000];
	uint64_t gpa[8];
	size_t n = 0;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < 8; i++)
		gpa[i] = drv_post1(&drv, RXQ, 65550 + 12, true, NULL);
	drv_kick(&drv, RXQ);
	peer_frame(60, 1, wire, &n);
	peer_frame(0, 0, wire, &n);             /* a bad length: skipped */
	peer_frame(1514, 2, wire, &n);
	peer_frame(65534, 3, wire, &n);
	/* in pieces that cut the length prefix and the frames */
	peer_write(wire, 2);
	event(EPOLLIN);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	peer_write(wire + 2, 70);
	event(EPOLLIN);
	peer_write(wire + 72, n - 72 - 5);
	event(EPOLLIN);
	peer_write(wire + n - 5, 5);
	event(EPOLLIN);
	guest_expect_rx(gpa, 0, 60, 1);
	guest_expect_rx(gpa, 1, 1514, 2);
	guest_expect_rx(gpa, 2, 65534, 3);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

/* passt's ACKs are small: one read takes hundreds of frames, more than
 * a call's budget. The socket is then empty, so no EPOLLIN comes for the
 * rest, and a guest that posts buffers with kicks suppressed (EVENT_IDX)
 * does not kick: unless the device runs itself again, those frames wait
 * for the next one passt sends, and a TCP sender waiting for its ACKs
 * stalls until its retransmission timer (this made `--net user` uploads
 * crawl and stop). */
START_TEST(rx_frames_left_in_the_buffer_are_not_forgotten)
{
	static uint8_t wire[400 * 64];
	uint32_t id, len;
	unsigned got = 0;
	size_t n = 0;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < DRV_QSIZE; i++)
		drv_post1(&drv, RXQ, 2048, true, NULL);
	drv_kick(&drv, RXQ);
	for (unsigned i = 0; i < 300; i++)
		peer_frame(60, (uint8_t)i, wire, &n);
	peer_write(wire, n);
	event(EPOLLIN);
	while (drv_used(&drv, RXQ, &id, &len))
		got++;
	ck_assert_uint_gt(got, 0);
	ck_assert_uint_lt(got, 300);
	/* The guest recycles buffers without a kick. */
	for (unsigned i = 0; i < 300 - got; i++)
		drv_post1(&drv, RXQ, 2048, true, NULL);
	ck_assert_msg(drv.requeues[RXQ] > 0,
		      "the device stopped with frames buffered and did not run itself again");
	/* What the transport's requeue does: signal the queue's kick. */
	drv_kick(&drv, RXQ);
	while (drv_used(&drv, RXQ, &id, &len))
		got++;
	ck_assert_uint_eq(got, 300);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

START_TEST(peer_closing_stops_the_nic_not_the_device)
{
	uint64_t gpa;

	drv_attach(&drv, &dev, F_MRG_RXBUF);
	gpa = drv_post1(&drv, RXQ, 65550 + 12, true, NULL);
	(void)gpa;
	drv_kick(&drv, RXQ);
	close(peer);
	event(EPOLLIN | EPOLLHUP);
	/* later packets are taken and dropped: the guest's ring keeps moving */
	guest_send(60, 1);
	drv_kick(&drv, TXQ);
	ck_assert_uint_eq(drv_used_count(&drv, TXQ), 1);
	drv_kick(&drv, RXQ);
	ck_assert_uint_eq(drv_used_count(&drv, RXQ), 0);
	ck_assert(virtio_dev_live(&dev));
	peer = -1;
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_net_stream");
	TCase *tc = tcase_create("stream");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, features_without_offloads_with_mtu);
	tcase_add_test(tc, tx_frames_leave_length_prefixed);
	tcase_add_test(tc, tx_full_socket_waits_for_epollout);
	tcase_add_test(tc, rx_frames_cut_anywhere_arrive_whole);
	tcase_add_test(tc, rx_frames_left_in_the_buffer_are_not_forgotten);
	tcase_add_test(tc, peer_closing_stops_the_nic_not_the_device);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
