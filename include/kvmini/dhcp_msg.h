/* DHCP messages (RFC 2131/2132) as kvmini's built-in guest init needs
 * them to configure a --net user NIC: DISCOVER and REQUEST built, OFFER,
 * ACK and NAK parsed with every length checked against the packet.
 * Pure functions: the init (guest-boot/init/init_net.c) sends and
 * receives; the host's unit tests check the bytes. */
#ifndef KVMINI_DHCP_MSG_H
#define KVMINI_DHCP_MSG_H

#include <stddef.h>
#include <stdint.h>

#define DHCP_DISCOVER 1
#define DHCP_OFFER    2
#define DHCP_REQUEST  3
#define DHCP_ACK      5
#define DHCP_NAK      6

/* Fixed part (236 bytes) + magic cookie + options, padded to BOOTP's 300. */
#define DHCP_MSG_MAX 576

/* What a reply says. Addresses in network byte order; 0 when absent. */
struct dhcp_lease {
	uint8_t type;           /* DHCP_OFFER, DHCP_ACK, DHCP_NAK */
	uint32_t addr;          /* yiaddr */
	uint32_t server;        /* option 54 */
	uint32_t netmask;       /* option 1 */
	uint32_t router;        /* option 3, the first */
	uint32_t dns;           /* option 6, the first */
	uint16_t mtu;           /* option 26 */
};

/* Writes a DISCOVER (@type DHCP_DISCOVER) or a REQUEST for @lease's
 * address from its server (DHCP_REQUEST) from @mac with @xid into @buf
 * (DHCP_MSG_MAX bytes), asking for a broadcast reply. Returns its
 * length. */
size_t dhcp_build(uint8_t *buf, uint8_t type, uint32_t xid, const uint8_t mac[6],
		  const struct dhcp_lease *lease);

/* Parses a server's reply of @len bytes: 0 with @out filled when it is a
 * BOOTREPLY for @xid and @mac with a message type; -1 otherwise
 * (truncated, another client's, options running past the end...). */
int dhcp_parse(const uint8_t *buf, size_t len, uint32_t xid, const uint8_t mac[6],
	       struct dhcp_lease *out);

#endif
