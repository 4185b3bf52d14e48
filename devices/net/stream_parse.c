/* Frame boundaries on QEMU's stream protocol: a 32-bit big-endian length,
 * then that many bytes of Ethernet frame. The bytes arrive in pieces of
 * any size; every length is checked before it is used, and a frame with
 * a length no Ethernet frame can have is read past (so the stream stays
 * in step) and counted, never stored. */
#include <string.h>

#include "kvmini/net_stream.h"

static void parser_next_frame(struct net_stream_parser *p)
{
	p->lenbuf_fill = 0;
	p->frame_len = p->frame_fill = 0;
	p->skipping = false;
}

/* The length prefix is complete: decide whether the frame is kept. */
static void parser_start_frame(struct net_stream_parser *p)
{
	p->frame_len = (uint32_t)p->lenbuf[0] << 24 | (uint32_t)p->lenbuf[1] << 16 |
		       (uint32_t)p->lenbuf[2] << 8 | p->lenbuf[3];
	p->frame_fill = 0;
	p->skipping = p->frame_len < NET_STREAM_MIN_FRAME || p->frame_len > NET_STREAM_MAX_FRAME;
	if (p->skipping)
		p->dropped++;
}

size_t net_stream_parse(struct net_stream_parser *p, const uint8_t *data, size_t len,
			uint8_t *frame, size_t *frame_out)
{
	size_t used = 0;

	*frame_out = 0;
	while (used < len) {
		if (p->lenbuf_fill < 4) {
			p->lenbuf[p->lenbuf_fill++] = data[used++];
			if (p->lenbuf_fill == 4)
				parser_start_frame(p);
		} else {
			size_t want = p->frame_len - p->frame_fill;
			size_t take = len - used < want ? len - used : want;

			if (!p->skipping)
				memcpy(frame + p->frame_fill, data + used, take);
			p->frame_fill += (uint32_t)take;
			used += take;
		}
		if (p->lenbuf_fill == 4 && p->frame_fill == p->frame_len) {
			bool keep = !p->skipping;

			if (keep)
				*frame_out = p->frame_len;
			parser_next_frame(p);
			if (keep)
				break;  /* the caller takes the frame first */
		}
	}
	return used;
}
