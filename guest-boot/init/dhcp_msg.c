/* DHCP messages: see include/kvmini/dhcp_msg.h. */
#include <arpa/inet.h>
#include <string.h>

#include "kvmini/dhcp_msg.h"

/* Offsets in the fixed BOOTP part. */
#define OFF_OP     0
#define OFF_HTYPE  1
#define OFF_HLEN   2
#define OFF_XID    4
#define OFF_FLAGS  10
#define OFF_YIADDR 16
#define OFF_CHADDR 28
#define OFF_COOKIE 236
#define OFF_OPTS   240
#define BOOTP_MIN  300

#define COOKIE 0x63825363u

#define OPT_PAD      0
#define OPT_NETMASK  1
#define OPT_ROUTER   3
#define OPT_DNS      6
#define OPT_MTU      26
#define OPT_REQ_ADDR 50
#define OPT_TYPE     53
#define OPT_SERVER   54
#define OPT_PARAMS   55
#define OPT_END      255

static void put32(uint8_t *p, uint32_t host_order)
{
	uint32_t v = htonl(host_order);

	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

size_t dhcp_build(uint8_t *buf, uint8_t type, uint32_t xid, const uint8_t mac[6],
		  const struct dhcp_lease *lease)
{
	static const uint8_t params[] = { OPT_NETMASK, OPT_ROUTER, OPT_DNS, OPT_MTU };
	size_t n = OFF_OPTS;

	memset(buf, 0, DHCP_MSG_MAX);
	buf[OFF_OP] = 1;         /* BOOTREQUEST */
	buf[OFF_HTYPE] = 1;      /* Ethernet */
	buf[OFF_HLEN] = 6;
	put32(buf + OFF_XID, xid);
	buf[OFF_FLAGS] = 0x80;   /* broadcast the reply: we have no address yet */
	memcpy(buf + OFF_CHADDR, mac, 6);
	put32(buf + OFF_COOKIE, COOKIE);
	buf[n++] = OPT_TYPE;
	buf[n++] = 1;
	buf[n++] = type;
	if (type == DHCP_REQUEST && lease) {
		buf[n++] = OPT_REQ_ADDR;
		buf[n++] = 4;
		memcpy(buf + n, &lease->addr, 4);
		n += 4;
		buf[n++] = OPT_SERVER;
		buf[n++] = 4;
		memcpy(buf + n, &lease->server, 4);
		n += 4;
	}
	buf[n++] = OPT_PARAMS;
	buf[n++] = sizeof(params);
	memcpy(buf + n, params, sizeof(params));
	n += sizeof(params);
	buf[n++] = OPT_END;
	return n < BOOTP_MIN ? BOOTP_MIN : n;
}

/* One option's value into @out: copied, so the packet is read once. */
static void take_option(uint8_t code, const uint8_t *v, uint8_t len, struct dhcp_lease *out)
{
	switch (code) {
	case OPT_TYPE:
		if (len >= 1)
			out->type = v[0];
		break;
	case OPT_NETMASK:
		if (len >= 4)
			memcpy(&out->netmask, v, 4);
		break;
	case OPT_ROUTER:
		if (len >= 4)
			memcpy(&out->router, v, 4);
		break;
	case OPT_DNS:
		if (len >= 4)
			memcpy(&out->dns, v, 4);
		break;
	case OPT_SERVER:
		if (len >= 4)
			memcpy(&out->server, v, 4);
		break;
	case OPT_MTU:
		if (len >= 2)
			out->mtu = (uint16_t)(v[0] << 8 | v[1]);
		break;
	}
}

int dhcp_parse(const uint8_t *buf, size_t len, uint32_t xid, const uint8_t mac[6],
	       struct dhcp_lease *out)
{
	size_t i = OFF_OPTS;

	memset(out, 0, sizeof(*out));
	if (len < OFF_OPTS || buf[OFF_OP] != 2 || buf[OFF_HTYPE] != 1 || buf[OFF_HLEN] != 6 ||
	    get32(buf + OFF_XID) != xid || memcmp(buf + OFF_CHADDR, mac, 6) ||
	    get32(buf + OFF_COOKIE) != COOKIE)
		return -1;
	memcpy(&out->addr, buf + OFF_YIADDR, 4);
	while (i < len) {
		uint8_t code = buf[i++], olen;

		if (code == OPT_END)
			break;
		if (code == OPT_PAD)
			continue;
		if (i >= len)
			return -1;
		olen = buf[i++];
		if (olen > len - i)
			return -1;
		take_option(code, buf + i, olen, out);
		i += olen;
	}
	return out->type ? 0 : -1;
}
