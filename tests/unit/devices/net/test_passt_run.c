/* A real passt behind the stream backend (skipped, exit 77, where passt is
 * not installed or this host has no default route, which passt needs):
 *   - a DHCP DISCOVER sent as the guest would send it comes back as an
 *     OFFER with an address and passt's MTU (65520): the framing and
 *     the command line kvmini gives passt work with the real thing;
 *   - passt is kvmini's child while the backend lives, and gone (exited,
 *     reaped) once the backend is destroyed. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmini/net_passt.h"
#include "../../check_main.h"

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* vnet header + Ethernet + IPv4 + UDP 68->67 + BOOTP DISCOVER. */
static size_t dhcp_discover(uint8_t *pkt)
{
	uint8_t *eth = pkt + 12, *ip = eth + 14, *udp = ip + 20, *bootp = udp + 8;
	size_t bootp_len = 236 + 4 + 3 + 1;
	uint16_t ip_len = (uint16_t)(20 + 8 + bootp_len), csum;

	memset(pkt, 0, 12 + 14 + ip_len);
	memset(eth, 0xff, 6);
	memcpy(eth + 6, guest_mac, 6);
	eth[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	csum = ip_checksum(ip, 20);
	ip[10] = (uint8_t)(csum >> 8);
	ip[11] = (uint8_t)csum;
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((8 + bootp_len) >> 8);
	udp[5] = (uint8_t)(8 + bootp_len);
	bootp[0] = 1;
	bootp[1] = 1;
	bootp[2] = 6;
	bootp[4] = 0x4b;        /* xid */
	bootp[5] = 0x56;
	memcpy(bootp + 28, guest_mac, 6);
	memcpy(bootp + 236, "\x63\x82\x53\x63", 4);
	memcpy(bootp + 240, "\x35\x01\x01\xff", 4);
	return 12 + 14 + ip_len;
}

/* Waits for packets from passt until a DHCP OFFER for our xid comes: its
 * yiaddr and its MTU option. */
static bool wait_offer(struct net_backend *be, uint8_t yiaddr[4], unsigned *mtu)
{
	static uint8_t buf[VNET_MAX_PACKET];
	struct iovec iov = { buf, sizeof(buf) };

	for (int tries = 0; tries < 100; tries++) {
		struct pollfd pfd = { be->fd, POLLIN, 0 };
		ssize_t n;

		poll(&pfd, 1, 50);
		while ((n = be->ops->recv(be, &iov, 1)) > 0) {
			const uint8_t *eth = buf + 12, *ip = eth + 14, *bootp = ip + 28;

			if (n < 12 + 14 + 28 + 240 || eth[12] != 0x08 || ip[9] != 17 || ip[23] != 68 ||
			    bootp[0] != 2 || bootp[4] != 0x4b || bootp[5] != 0x56)
				continue;
			memcpy(yiaddr, bootp + 16, 4);
			*mtu = 0;
			for (const uint8_t *o = bootp + 240; o + 2 <= buf + n && *o != 0xff;
			     o += *o ? 2 + o[1] : 1)
				if (o[0] == 26 && o[1] == 2)
					*mtu = (unsigned)o[2] << 8 | o[3];
			return true;
		}
		ck_assert_int_ne(n, -EPIPE);    /* passt must not have gone */
	}
	return false;
}

START_TEST(dhcp_offer_through_real_passt)
{
	static uint8_t pkt[1024];
	struct net_user_cfg cfg = { 0 };
	struct net_backend *be;
	struct kv_err e = { 0 };
	uint8_t yiaddr[4] = { 0 };
	unsigned mtu = 0;
	size_t len = dhcp_discover(pkt);
	struct iovec iov = { pkt, len };

	ck_assert_msg(net_passt_backend_start(&cfg, &be, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), 0);        /* passt runs, our child */
	ck_assert_int_eq(be->ops->send(be, &iov, 1, len), 1);
	ck_assert_int_eq(be->ops->flush(be), 1);
	ck_assert_msg(wait_offer(be, yiaddr, &mtu), "no DHCP OFFER from passt within 5 s");
	ck_assert_msg(yiaddr[0] != 0, "offered 0.0.0.0");
	ck_assert_uint_eq(mtu, 65520);
	printf("passt offered %u.%u.%u.%u, MTU %u\n", yiaddr[0], yiaddr[1], yiaddr[2], yiaddr[3], mtu);
	net_backend_destroy(be);
	/* destroy closed the socket, passt exited and was reaped */
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_passt_run");
	TCase *tc = tcase_create("passt");

	if (system("command -v passt >/dev/null 2>&1") != 0) {
		printf("SKIP net_passt_run: passt is not installed (Debian package passt)\n");
		return 77;
	}
	if (system("ip route show default 2>/dev/null | grep -q . || ip -6 route show default 2>/dev/null | grep -q .") != 0) {
		printf("SKIP net_passt_run: this host has no default route, and passt needs one\n");
		return 77;
	}
	tcase_add_test(tc, dhcp_offer_through_real_passt);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
