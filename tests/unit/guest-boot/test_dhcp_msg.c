/* The built-in init's DHCP messages (guest-boot/init/dhcp_msg.c), on the
 * host: a DISCOVER and a REQUEST byte for byte where it matters, replies
 * as passt sends them parsed, and malformed replies (truncated, another
 * client's, options running past the end, no message type) refused. */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "kvmini/dhcp_msg.h"
#include "../check_main.h"

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

/* A server's reply to @xid: OFFER/ACK of 10.0.2.15 with the options
 * passt gives (mask, router, DNS, MTU 65520, server id), and END. */
static size_t reply(uint8_t *b, uint32_t xid, uint8_t type)
{
	static const uint8_t opts[] = { 53, 1, 0, 1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 2,
					6, 4, 10, 0, 2, 3, 26, 2, 0xff, 0xf0, 54, 4, 10, 0, 2, 2,
					51, 4, 0, 0, 0x0e, 0x10, 255 };
	uint32_t v;

	memset(b, 0, DHCP_MSG_MAX);
	b[0] = 2, b[1] = 1, b[2] = 6;
	v = htonl(xid);
	memcpy(b + 4, &v, 4);
	b[16] = 10, b[17] = 0, b[18] = 2, b[19] = 15;
	memcpy(b + 28, mac, 6);
	v = htonl(0x63825363);
	memcpy(b + 236, &v, 4);
	memcpy(b + 240, opts, sizeof(opts));
	b[242] = type;
	return 240 + sizeof(opts);
}

START_TEST(discover_and_request)
{
	uint8_t b[DHCP_MSG_MAX];
	struct dhcp_lease offer = { .addr = htonl(0x0a00020f), .server = htonl(0x0a000202) };
	size_t n = dhcp_build(b, DHCP_DISCOVER, 0x01020304, mac, NULL);

	ck_assert_uint_eq(n, 300);              /* BOOTP's minimum */
	ck_assert_uint_eq(b[0], 1);             /* BOOTREQUEST */
	ck_assert_uint_eq(b[1], 1);
	ck_assert_uint_eq(b[2], 6);
	ck_assert_uint_eq(b[4] << 24 | b[5] << 16 | b[6] << 8 | b[7], 0x01020304);
	ck_assert_uint_eq(b[10], 0x80);         /* broadcast flag */
	ck_assert_mem_eq(b + 28, mac, 6);
	ck_assert_uint_eq(b[236] << 24 | b[237] << 16 | b[238] << 8 | b[239], 0x63825363);
	ck_assert_mem_eq(b + 240, "\x35\x01\x01\x37\x04\x01\x03\x06\x1a\xff", 10);

	n = dhcp_build(b, DHCP_REQUEST, 7, mac, &offer);
	ck_assert_uint_eq(n, 300);
	ck_assert_mem_eq(b + 240, "\x35\x01\x03\x32\x04\x0a\x00\x02\x0f\x36\x04\x0a\x00\x02\x02"
			 "\x37\x04\x01\x03\x06\x1a\xff", 22);
}
END_TEST

START_TEST(passt_reply)
{
	uint8_t b[DHCP_MSG_MAX];
	struct dhcp_lease l;
	size_t n = reply(b, 99, 5);

	ck_assert_int_eq(dhcp_parse(b, n, 99, mac, &l), 0);
	ck_assert_uint_eq(l.type, DHCP_ACK);
	ck_assert_uint_eq(ntohl(l.addr), 0x0a00020f);
	ck_assert_uint_eq(ntohl(l.netmask), 0xffffff00);
	ck_assert_uint_eq(ntohl(l.router), 0x0a000202);
	ck_assert_uint_eq(ntohl(l.dns), 0x0a000203);
	ck_assert_uint_eq(ntohl(l.server), 0x0a000202);
	ck_assert_uint_eq(l.mtu, 65520);
	/* Padding between options, and trailing bytes after END, are fine. */
	memmove(b + 241, b + 240, n - 240);
	b[240] = 0;
	ck_assert_int_eq(dhcp_parse(b, n + 1, 99, mac, &l), 0);
	ck_assert_uint_eq(l.mtu, 65520);
}
END_TEST

START_TEST(bad_replies)
{
	uint8_t b[DHCP_MSG_MAX];
	uint8_t other[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	struct dhcp_lease l;
	size_t n = reply(b, 5, 2);

	ck_assert_int_eq(dhcp_parse(b, n, 6, mac, &l), -1);          /* another xid */
	ck_assert_int_eq(dhcp_parse(b, n, 5, other, &l), -1);        /* another client */
	for (size_t cut = 0; cut < 243; cut++)                       /* truncated before the type */
		ck_assert_int_eq(dhcp_parse(b, cut, 5, mac, &l), -1);
	b[0] = 1;                                                     /* a request, not a reply */
	ck_assert_int_eq(dhcp_parse(b, n, 5, mac, &l), -1);
	n = reply(b, 5, 2);
	b[236] ^= 1;                                                  /* no magic cookie */
	ck_assert_int_eq(dhcp_parse(b, n, 5, mac, &l), -1);
	n = reply(b, 5, 2);
	/* An option whose length runs past the end of the packet. */
	b[244] = 200;
	ck_assert_int_eq(dhcp_parse(b, 250, 5, mac, &l), -1);
	/* An option code as the last byte, with no length byte after it. */
	n = reply(b, 5, 2);
	ck_assert_int_eq(dhcp_parse(b, 244, 5, mac, &l), -1);
	/* No message type at all. */
	n = reply(b, 5, 2);
	b[240] = 255;
	ck_assert_int_eq(dhcp_parse(b, n, 5, mac, &l), -1);
	/* A value shorter than its option needs is not used (nor read past). */
	n = reply(b, 5, 2);
	b[250] = 1;                                                   /* router option, length 1 */
	b[252] = 255;                                                 /* END after its one byte */
	ck_assert_int_eq(dhcp_parse(b, n, 5, mac, &l), 0);
	ck_assert_uint_eq(l.router, 0);
	ck_assert_uint_eq(ntohl(l.netmask), 0xffffff00);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dhcp_msg");
	TCase *tc = tcase_create("dhcp_msg");

	tcase_add_test(tc, discover_and_request);
	tcase_add_test(tc, passt_reply);
	tcase_add_test(tc, bad_replies);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
