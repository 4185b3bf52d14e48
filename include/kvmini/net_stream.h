/* The receive side of QEMU's stream protocol (devices/net/stream_parse.c),
 * apart from the backend so the unit tests and the fuzzer feed it bytes:
 * each Ethernet frame preceded by its length, 32-bit big-endian. */
#ifndef KVMINI_NET_STREAM_H
#define KVMINI_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/net_backend.h"

/* The stream's receive parser, apart so tests and the fuzzer can feed it
 * bytes. It holds at most one frame's prefix and body and never trusts a
 * length: a zero or oversized length or a frame shorter than an Ethernet
 * header is skipped by its length, so the stream stays in step. */
struct net_stream_parser {
	uint8_t lenbuf[4];
	unsigned lenbuf_fill;   /* bytes of the length prefix seen */
	uint32_t frame_len;     /* the current frame's length, once known */
	uint32_t frame_fill;    /* its bytes seen so far */
	bool skipping;          /* the current frame is being dropped */
	unsigned long dropped;  /* frames skipped for a bad length */
};

/* Takes bytes from @data (@len) into the frame being assembled in @frame
 * (NET_STREAM_MAX_FRAME bytes). Returns how many bytes it consumed; sets
 * *@frame_out to the frame's length when one is complete (0 otherwise),
 * after which the caller uses @frame before the next call. */
size_t net_stream_parse(struct net_stream_parser *p, const uint8_t *data, size_t len,
			uint8_t *frame, size_t *frame_out);

#endif
