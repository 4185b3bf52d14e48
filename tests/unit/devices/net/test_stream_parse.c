/* The stream protocol's frame parser: frames come out whole and in order
 * however the bytes are cut, and lengths no Ethernet frame has (zero,
 * shorter than its header, longer than the largest) are read past and
 * counted without losing step with the frames after them. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/net_stream.h"
#include "../../check_main.h"

static uint8_t frame[NET_STREAM_MAX_FRAME];
static uint8_t stream[4 * NET_STREAM_MAX_FRAME];
static size_t stream_len;

/* Appends a length prefix of @len and @body_len bytes of body whose byte
 * i is (seed + i). */
static void put(uint32_t len, size_t body_len, uint8_t seed)
{
	uint8_t *p = stream + stream_len;

	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	for (size_t i = 0; i < body_len; i++)
		p[4 + i] = (uint8_t)(seed + i);
	stream_len += 4 + body_len;
}

struct got {
	size_t len[16];
	uint8_t seed_ok[16];
	unsigned n;
};

/* Feeds the stream in pieces of @piece bytes (0: random sizes). */
static void feed(struct net_stream_parser *p, size_t piece, struct got *g)
{
	size_t off = 0;

	memset(g, 0, sizeof(*g));
	while (off < stream_len) {
		size_t n = piece ? piece : 1 + (size_t)rand() % 3000;
		size_t flen;

		if (n > stream_len - off)
			n = stream_len - off;
		size_t used = net_stream_parse(p, stream + off, n, frame, &flen);

		ck_assert_uint_le(used, n);
		off += used;
		if (flen) {
			ck_assert_uint_lt(g->n, 16);
			g->len[g->n] = flen;
			g->seed_ok[g->n] = 1;
			for (size_t i = 0; i < flen; i++)
				if (frame[i] != (uint8_t)(frame[0] + i))
					g->seed_ok[g->n] = 0;
			g->n++;
		} else {
			ck_assert_uint_eq(used, n);     /* no frame: all taken */
		}
	}
}

START_TEST(frames_whole_however_cut)
{
	static const size_t pieces[] = { 1, 2, 3, 4, 5, 13, 64, 1500, 65536, 0 };
	struct net_stream_parser p;
	struct got g;

	stream_len = 0;
	put(60, 60, 1);
	put(NET_STREAM_MAX_FRAME, NET_STREAM_MAX_FRAME, 2);
	put(14, 14, 3);
	put(1514, 1514, 4);
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		memset(&p, 0, sizeof(p));
		feed(&p, pieces[k], &g);
		ck_assert_uint_eq(g.n, 4);
		ck_assert_uint_eq(g.len[0], 60);
		ck_assert_uint_eq(g.len[1], NET_STREAM_MAX_FRAME);
		ck_assert_uint_eq(g.len[2], 14);
		ck_assert_uint_eq(g.len[3], 1514);
		for (unsigned i = 0; i < 4; i++)
			ck_assert(g.seed_ok[i]);
		ck_assert_uint_eq(p.dropped, 0);
	}
}
END_TEST

START_TEST(bad_lengths_skipped_in_step)
{
	static const size_t pieces[] = { 1, 7, 4096, 0 };
	struct net_stream_parser p;
	struct got g;

	stream_len = 0;
	put(0, 0, 0);                                   /* empty */
	put(60, 60, 10);
	put(13, 13, 0);                                 /* shorter than a header */
	put(NET_STREAM_MAX_FRAME + 1, NET_STREAM_MAX_FRAME + 1, 0);    /* too long */
	put(100, 100, 20);
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		memset(&p, 0, sizeof(p));
		feed(&p, pieces[k], &g);
		ck_assert_uint_eq(g.n, 2);
		ck_assert_uint_eq(g.len[0], 60);
		ck_assert_uint_eq(g.len[1], 100);
		ck_assert(g.seed_ok[0] && g.seed_ok[1]);
		ck_assert_uint_eq(p.dropped, 3);
	}
}
END_TEST

/* A length of 4 GiB - 1 is skipped byte by byte as it arrives: a frame
 * buffer of NET_STREAM_MAX_FRAME is never overrun. */
START_TEST(huge_length_never_stored)
{
	struct net_stream_parser p;
	size_t flen;

	memset(&p, 0, sizeof(p));
	memset(frame, 0x5a, sizeof(frame));
	stream_len = 0;
	put(0xffffffffu, 3 * NET_STREAM_MAX_FRAME, 0);
	ck_assert_uint_eq(net_stream_parse(&p, stream, stream_len, frame, &flen), stream_len);
	ck_assert_uint_eq(flen, 0);
	ck_assert_uint_eq(p.dropped, 1);
	ck_assert(p.skipping);
	for (size_t i = 0; i < sizeof(frame); i++)
		ck_assert_uint_eq(frame[i], 0x5a);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net_stream_parse");
	TCase *tc = tcase_create("parse");

	srand(7);
	tcase_add_test(tc, frames_whole_however_cut);
	tcase_add_test(tc, bad_lengths_skipped_in_step);
	tcase_add_test(tc, huge_length_never_stored);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
