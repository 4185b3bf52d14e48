/* The built-in init's network: each NIC kvmini names with
 * kvmini.dhcp=MAC[,MAC] on the kernel command line (the --net user ones)
 * is brought up with the address, netmask, gateway and MTU that passt's
 * DHCP server gives. DHCP runs over a packet socket: the NIC has no
 * address yet, and a reply sent to the offered address would not reach
 * a UDP socket. Messages are built and parsed by dhcp_msg.c. Failures
 * are said on the console and the boot goes on (as the tools/
 * initramfs's udhcpc does). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <net/route.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "init_util.h"
#include "kvmini/dhcp_msg.h"

#define IP_HDR 20
#define UDP_HDR 8

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

/* The interface with @mac into @name, waiting up to 3 s for its driver. */
static int find_interface(const uint8_t mac[6], char name[IF_NAMESIZE])
{
	for (int tries = 0; tries < 30; tries++) {
		DIR *d = opendir("/sys/class/net");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[300], *text;
			uint8_t m[6];
			size_t len;

			if (e->d_name[0] == '.' || strlen(e->d_name) >= IF_NAMESIZE)
				continue;
			snprintf(path, sizeof(path), "/sys/class/net/%s/address", e->d_name);
			text = slurp(path, 64, &len);
			if (text && !parse_mac(text, m) && !memcmp(m, mac, 6)) {
				free(text);
				strcpy(name, e->d_name);
				closedir(d);
				return 0;
			}
			free(text);
		}
		if (d)
			closedir(d);
		usleep(100 * 1000);
	}
	return -1;
}

static int if_ioctl(int s, unsigned long req, const char *name, struct ifreq *r)
{
	snprintf(r->ifr_name, sizeof(r->ifr_name), "%s", name);
	return ioctl(s, req, r);
}

static int if_up(int s, const char *name)
{
	struct ifreq r = { 0 };

	if (if_ioctl(s, SIOCGIFFLAGS, name, &r) < 0)
		return -1;
	r.ifr_flags |= IFF_UP | IFF_RUNNING;
	return if_ioctl(s, SIOCSIFFLAGS, name, &r);
}

static uint16_t ip_checksum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One DHCP message, broadcast from 0.0.0.0:68 to 255.255.255.255:67. */
static int send_msg(int ps, int ifindex, const uint8_t *msg, size_t len)
{
	static uint8_t pkt[IP_HDR + UDP_HDR + DHCP_MSG_MAX];
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = ifindex, .sll_halen = 6,
		.sll_addr = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	};
	size_t total = IP_HDR + UDP_HDR + len;
	uint16_t c;

	memset(pkt, 0, IP_HDR + UDP_HDR);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(total >> 8);
	pkt[3] = (uint8_t)total;
	pkt[8] = 64;            /* TTL */
	pkt[9] = 17;            /* UDP */
	memset(pkt + 16, 0xff, 4);
	c = ip_checksum(pkt, IP_HDR);
	pkt[10] = (uint8_t)(c >> 8);
	pkt[11] = (uint8_t)c;
	pkt[IP_HDR + 1] = 68;
	pkt[IP_HDR + 3] = 67;
	pkt[IP_HDR + 4] = (uint8_t)((UDP_HDR + len) >> 8);
	pkt[IP_HDR + 5] = (uint8_t)(UDP_HDR + len);
	memcpy(pkt + IP_HDR + UDP_HDR, msg, len);  /* UDP checksum 0: none */
	return sendto(ps, pkt, total, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)total ?
	       0 : -1;
}

/* Waits up to @ms for a reply to @xid of type @want (or a NAK). */
static int await_reply(int ps, uint32_t xid, const uint8_t mac[6], uint8_t want, int ms,
		       struct dhcp_lease *out)
{
	static uint8_t pkt[2048];
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = ps, .events = POLLIN };
		long left;
		ssize_t n;
		size_t ihl, ulen;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		n = recv(ps, pkt, sizeof(pkt), 0);
		if (n < IP_HDR + UDP_HDR || (pkt[0] >> 4) != 4 || pkt[9] != 17)
			continue;
		ihl = (size_t)(pkt[0] & 15) * 4;
		if (ihl < IP_HDR || ihl + UDP_HDR > (size_t)n ||
		    (pkt[ihl + 2] << 8 | pkt[ihl + 3]) != 68)
			continue;
		ulen = (size_t)(pkt[ihl + 4] << 8 | pkt[ihl + 5]);
		if (ulen < UDP_HDR || ulen > (size_t)n - ihl)
			continue;
		if (dhcp_parse(pkt + ihl + UDP_HDR, ulen - UDP_HDR, xid, mac, out))
			continue;
		if (out->type == want || out->type == DHCP_NAK)
			return 0;
	}
}

/* DISCOVER, OFFER, REQUEST, ACK: three tries of a second each. */
static int lease_for(int ps, int ifindex, const uint8_t mac[6], struct dhcp_lease *l)
{
	static uint8_t msg[DHCP_MSG_MAX];
	uint32_t xid = (uint32_t)time(NULL) ^ (uint32_t)(mac[4] << 8 | mac[5]) ^ (uint32_t)getpid();
	struct dhcp_lease offer;
	size_t len;

	for (int tries = 0; tries < 3; tries++, xid++) {
		len = dhcp_build(msg, DHCP_DISCOVER, xid, mac, NULL);
		if (send_msg(ps, ifindex, msg, len) || await_reply(ps, xid, mac, DHCP_OFFER, 1000, &offer) ||
		    offer.type != DHCP_OFFER || !offer.addr)
			continue;
		len = dhcp_build(msg, DHCP_REQUEST, xid, mac, &offer);
		if (send_msg(ps, ifindex, msg, len) || await_reply(ps, xid, mac, DHCP_ACK, 1000, l))
			continue;
		if (l->type == DHCP_ACK && l->addr)
			return 0;
	}
	return -1;
}

static int set_addr(int s, unsigned long req, const char *name, uint32_t a)
{
	struct ifreq r = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&r.ifr_addr;

	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = a;
	return if_ioctl(s, req, name, &r);
}

static int apply(int s, const char *name, const struct dhcp_lease *l)
{
	struct rtentry rt = { 0 };
	struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
	struct ifreq r = { 0 };
	char dev[IF_NAMESIZE];

	if (set_addr(s, SIOCSIFADDR, name, l->addr) ||
	    (l->netmask && set_addr(s, SIOCSIFNETMASK, name, l->netmask)))
		return -1;
	r.ifr_mtu = l->mtu;
	if (l->mtu >= 68 && if_ioctl(s, SIOCSIFMTU, name, &r))
		say("init: %s: cannot set MTU %u: %s", name, l->mtu, strerror(errno));
	if (if_up(s, name))
		return -1;
	if (!l->router)
		return 0;
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	gw->sin_family = AF_INET;
	gw->sin_addr.s_addr = l->router;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	snprintf(dev, sizeof(dev), "%s", name);
	rt.rt_dev = dev;
	return ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST ? -1 : 0;
}

static void configure(int s, const uint8_t mac[6], const char *mac_text)
{
	char name[IF_NAMESIZE], a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	struct sockaddr_ll me = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	struct dhcp_lease l;
	int ps;

	if (find_interface(mac, name)) {
		say("init: no network interface with address %s", mac_text);
		return;
	}
	if (if_up(s, name)) {
		say("init: %s: cannot bring it up: %s", name, strerror(errno));
		return;
	}
	me.sll_ifindex = (int)if_nametoindex(name);
	ps = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	if (ps < 0 || bind(ps, (struct sockaddr *)&me, sizeof(me))) {
		say("init: %s: packet socket: %s", name, strerror(errno));
		if (ps >= 0)
			close(ps);
		return;
	}
	if (lease_for(ps, me.sll_ifindex, mac, &l))
		say("init: no DHCP answer on %s (%s)", name, mac_text);
	else if (apply(s, name, &l))
		say("init: %s: cannot apply the lease: %s", name, strerror(errno));
	else
		say("init: %s: %s/%d via %s, MTU %u (DHCP)", name,
		    inet_ntop(AF_INET, &l.addr, a, sizeof(a)), __builtin_popcount(l.netmask),
		    l.router ? inet_ntop(AF_INET, &l.router, g, sizeof(g)) : "none", l.mtu);
	close(ps);
}

void net_configure(const char *macs)
{
	const char *p = macs;
	int s;

	if (!*p)
		return;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		say("init: socket: %s", strerror(errno));
		return;
	}
	if (if_up(s, "lo"))
		say("init: lo: %s", strerror(errno));
	while (*p) {
		char text[18] = { 0 };
		uint8_t mac[6];
		size_t n = strcspn(p, ",");

		if (n < sizeof(text)) {
			memcpy(text, p, n);
			if (!parse_mac(text, mac))
				configure(s, mac, text);
		}
		p += n;
		if (*p == ',')
			p++;
	}
	close(s);
}
