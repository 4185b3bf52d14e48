/* virtio-net on a real tap: open errors, offload probing, and a frame
 * each way between the guest rings and the host's network stack (an
 * AF_PACKET socket on the tap interface), with the event-loop thread
 * running. Needs CAP_NET_ADMIN and /dev/net/tun: without them the suite
 * says why and exits 77 (a skip, not a pass). */
#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/virtio_net.h"
#include "kvmini/net_backend.h"
#include "../../check_main.h"
#include "drv_ring.h"

#define RXQ 0
#define TXQ 1
#define ETH_P_TEST 0x88b5       /* IEEE local experimental */
#define F_GUEST_CSUM (1ull << 1)
#define F_GUEST_TSO4 (1ull << 7)
#define F_MRG_RXBUF  (1ull << 15)

static char tap_name[IFNAMSIZ];

static void set_up(const char *name)
{
	struct ifreq ifr = { 0 };
	char path[128];
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	FILE *f;

	/* Keep IPv6 autoconfiguration chatter off the test's wire. */
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	f = fopen(path, "w");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	ck_assert_int_ge(s, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ck_assert_int_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	ck_assert_int_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
}

START_TEST(open_probe_and_busy)
{
	struct tap_caps caps = { 0 }, caps2;
	struct kv_err e = { 0 };
	int fd = tap_open(tap_name, &caps, &e);
	int fd2;

	ck_assert_msg(fd >= 0, "%s", e.msg);
	ck_assert(caps.offloads & TUN_F_CSUM);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	fd2 = tap_open(tap_name, &caps2, &e);
	ck_assert_int_eq(fd2, -EBUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, tap_name));
	ck_assert_ptr_nonnull(strstr(e.msg, "in use"));
	close(fd);
}
END_TEST

static bool used_under_lock(struct drv *d, struct virtio_dev *dev, unsigned q, uint32_t *id,
			    uint32_t *len)
{
	bool r;

	pthread_mutex_lock(&dev->lock);
	r = drv_used(d, q, id, len);
	pthread_mutex_unlock(&dev->lock);
	return r;
}

START_TEST(frames_both_ways)
{
	struct virtio_net_cfg cfg = { .mac = { 0x02, 0, 0, 0, 0, 0x42 },
				      .mac_set = true };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_TEST) };
	static const char tx_payload[] = "kvmini guest to host";
	static const char rx_payload[] = "kvmini host to guest";
	uint8_t frame[128], got[2048];
	struct kv_err e = { 0 };
	struct virtio_dev dev;
	struct evloop *loop;
	struct net_backend *be;
	struct drv drv;
	uint64_t bufs[64];
	struct pollfd pfd;
	bool found = false;
	int ps;

	drv_init(&drv);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	ck_assert_msg(net_tap_backend_open(tap_name, &be, &e) == 0, "%s", e.msg);
	ck_assert_msg(virtio_net_create(&cfg, be, &drv.gm, loop, &dev, &e) == 0, "%s", e.msg);
	ck_assert(dev.features & F_GUEST_TSO4);
	set_up(tap_name);
	ps = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_TEST));
	ck_assert_int_ge(ps, 0);
	sll.sll_ifindex = (int)if_nametoindex(tap_name);
	ck_assert_int_gt(sll.sll_ifindex, 0);
	ck_assert_int_eq(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);
	/* TUNSETOFFLOAD from the negotiated GUEST_* features must succeed */
	drv_attach(&drv, &dev, F_MRG_RXBUF | F_GUEST_CSUM | F_GUEST_TSO4);
	ck_assert(virtio_dev_live(&dev));

	/* guest -> host */
	memset(frame, 0, sizeof(frame));
	memset(frame + 12, 0xff, 6);                       /* broadcast */
	memcpy(frame + 18, cfg.mac, 6);
	frame[24] = ETH_P_TEST >> 8;
	frame[25] = ETH_P_TEST & 0xff;
	memcpy(frame + 26, tx_payload, sizeof(tx_payload));
	memcpy(drv_host(&drv, drv_post1(&drv, TXQ, 26 + sizeof(tx_payload), false, NULL)),
	       frame, 26 + sizeof(tx_payload));
	drv_kick(&drv, TXQ);
	pfd = (struct pollfd){ .fd = ps, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 2000), 1);
	ck_assert_int_eq(recv(ps, got, sizeof(got), 0), 14 + sizeof(tx_payload));
	ck_assert_mem_eq(got + 14, tx_payload, sizeof(tx_payload));

	/* host -> guest, among whatever else the host sends */
	for (unsigned i = 0; i < 64; i++)
		bufs[i] = drv_post1(&drv, RXQ, 2048, true, NULL);
	drv_kick(&drv, RXQ);
	memset(frame, 0, sizeof(frame));
	memcpy(frame, cfg.mac, 6);
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x99", 6);
	frame[12] = ETH_P_TEST >> 8;
	frame[13] = ETH_P_TEST & 0xff;
	memcpy(frame + 14, rx_payload, sizeof(rx_payload));
	ck_assert_int_eq(sendto(ps, frame, 14 + sizeof(rx_payload), 0, (struct sockaddr *)&sll,
				sizeof(sll)), 14 + sizeof(rx_payload));
	for (unsigned waited = 0, next = 0; waited < 2000 && !found; ) {
		uint32_t id, len;

		if (!used_under_lock(&drv, &dev, RXQ, &id, &len)) {
			usleep(1000);
			waited++;
			continue;
		}
		/* single-buffer frames: chains come back in order */
		const uint8_t *p = drv_host(&drv, bufs[next++]);
		uint16_t nb;

		memcpy(&nb, p + 10, 2);
		ck_assert_uint_eq(le16toh(nb), 1);
		if (len == 12 + 14 + sizeof(rx_payload) && p[12 + 12] == ETH_P_TEST >> 8 &&
		    p[12 + 13] == (ETH_P_TEST & 0xff)) {
			ck_assert_mem_eq(p + 12 + 14, rx_payload, sizeof(rx_payload));
			found = true;
		}
	}
	ck_assert_msg(found, "the frame sent on %s never reached the guest", tap_name);

	evloop_stop(loop);
	virtio_dev_fini(&dev);
	evloop_destroy(loop);
	close(ps);
	drv_fini(&drv);
}
END_TEST

/* `ip link del NAME`, through rtnetlink; 0 or a negative errno. */
static int link_del(const char *name)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_DELLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)if_nametoindex(name) },
	};
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr err;
	} ack;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int r = -EIO;

	if (fd < 0)
		return -errno;
	if (send(fd, &req, sizeof(req), 0) == (ssize_t)sizeof(req) &&
	    recv(fd, &ack, sizeof(ack), 0) >= (ssize_t)sizeof(ack) && ack.nh.nlmsg_type == NLMSG_ERROR)
		r = ack.err.error;
	close(fd);
	return r;
}

static double cpu_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The tap deleted under a live device (`ip link del`): tun then reports
 * EPOLLERR on the fd forever. The event loop must stop watching it rather
 * than spin, and the guest's transmit chains still come back (dropped). */
START_TEST(tap_deleted_under_device)
{
	struct virtio_net_cfg cfg = { 0 };
	struct kv_err e = { 0 };
	struct virtio_dev dev;
	struct evloop *loop;
	struct net_backend *be;
	struct drv drv;
	uint32_t id, len;
	uint64_t buf;
	double cpu0, cpu;
	bool back = false;

	drv_init(&drv);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	ck_assert_msg(net_tap_backend_open(tap_name, &be, &e) == 0, "%s", e.msg);
	ck_assert_msg(virtio_net_create(&cfg, be, &drv.gm, loop, &dev, &e) == 0, "%s", e.msg);
	set_up(tap_name);
	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);
	drv_attach(&drv, &dev, F_MRG_RXBUF);
	for (unsigned i = 0; i < 8; i++)
		drv_post1(&drv, RXQ, 2048, true, NULL);
	drv_kick(&drv, RXQ);

	ck_assert_int_eq(link_del(tap_name), 0);
	/* A transmit after that: the write fails, the chain comes back, and
	 * the device re-arms its epoll events, which now report the error. */
	buf = drv_post1(&drv, TXQ, 60, false, NULL);
	memset(drv_host(&drv, buf), 0, 60);
	drv_kick(&drv, TXQ);
	for (unsigned waited = 0; waited < 2000 && !back; waited++) {
		back = used_under_lock(&drv, &dev, TXQ, &id, &len);
		if (!back)
			usleep(1000);
	}
	ck_assert_msg(back, "a transmit chain never came back after the tap went away");
	usleep(100 * 1000);
	cpu0 = cpu_seconds();
	usleep(500 * 1000);
	cpu = cpu_seconds() - cpu0;
	ck_assert_msg(cpu < 0.1, "the event loop spins after the tap went away: %.2f s of CPU in 0.5 s",
		      cpu);
	ck_assert(virtio_dev_live(&dev));

	evloop_stop(loop);
	virtio_dev_fini(&dev);
	evloop_destroy(loop);
	drv_fini(&drv);
}
END_TEST

int main(void)
{
	struct tap_caps caps;
	struct kv_err e = { 0 };
	Suite *s;
	TCase *tc;
	int fd;

	snprintf(tap_name, sizeof(tap_name), "kvnt%u", (unsigned)getpid() % 100000);
	fd = tap_open(tap_name, &caps, &e);
	if (fd < 0) {
		printf("SKIP virtio_net_tap: cannot create a tap here: %s\n", e.msg);
		return 77;
	}
	close(fd);      /* not persistent: gone with the fd */

	s = suite_create("virtio_net_tap");
	tc = tcase_create("tap");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, open_probe_and_busy);
	tcase_add_test(tc, frames_both_ways);
	tcase_add_test(tc, tap_deleted_under_device);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
