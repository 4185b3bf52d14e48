/* The stream protocol's frame parser (devices/net/stream_parse.c) against
 * a model: the input (after a first byte that picks how it is cut) is the
 * byte stream passt would send. The parser, fed in pieces, must produce
 * exactly the frames, in order and byte for byte, and the count of bad
 * lengths that a one-pass reading of the whole stream finds, and never
 * write past its frame buffer. */
#include <stdlib.h>
#include <string.h>

#include "kvmini/net_stream.h"
#include "fuzz_common.h"

static uint8_t frame[NET_STREAM_MAX_FRAME + 64];

void fuzz_init(void)
{
}

/* The model: reads the whole stream at once. Returns the next frame's
 * offset and length in @data, or false at the end; counts bad lengths. */
static bool model_next(const uint8_t *data, size_t size, size_t *pos, size_t *off,
		       size_t *len, unsigned long *dropped)
{
	while (*pos + 4 <= size) {
		uint32_t l = (uint32_t)data[*pos] << 24 | (uint32_t)data[*pos + 1] << 16 |
			     (uint32_t)data[*pos + 2] << 8 | data[*pos + 3];
		bool ok = l >= NET_STREAM_MIN_FRAME && l <= NET_STREAM_MAX_FRAME;

		if (size - *pos - 4 < l) {
			/* an incomplete last frame: the parser may still be in it */
			*dropped += !ok;
			*pos = size;
			return false;
		}
		*off = *pos + 4;
		*pos += 4 + (size_t)l;
		if (ok) {
			*len = l;
			return true;
		}
		(*dropped)++;
	}
	*pos = size;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_stream_parser p;
	unsigned long model_dropped = 0;
	uint32_t cut;
	size_t pos = 0, mpos = 0, moff, mlen;

	if (size < 1)
		return 0;
	cut = data[0];
	data++;
	size--;
	memset(&p, 0, sizeof(p));
	memset(frame + NET_STREAM_MAX_FRAME, 0xa5, 64);
	while (pos < size) {
		/* piece sizes from a small generator seeded by the first byte */
		size_t piece = 1 + (cut % 97) * (cut % 5 == 0 ? 700 : 1);
		size_t flen;

		cut = cut * 1103515245u + 12345u;
		if (piece > size - pos)
			piece = size - pos;
		size_t used = net_stream_parse(&p, data + pos, piece, frame, &flen);

		FUZZ_CHECK(used <= piece);
		FUZZ_CHECK(flen || used == piece);
		pos += used;
		if (flen) {
			FUZZ_CHECK(model_next(data, size, &mpos, &moff, &mlen, &model_dropped));
			FUZZ_CHECK(flen == mlen);
			FUZZ_CHECK(memcmp(frame, data + moff, flen) == 0);
		}
		for (unsigned i = 0; i < 64; i++)
			FUZZ_CHECK(frame[NET_STREAM_MAX_FRAME + i] == 0xa5);
	}
	/* no frame the model finds was missed */
	FUZZ_CHECK(!model_next(data, size, &mpos, &moff, &mlen, &model_dropped));
	FUZZ_CHECK(p.dropped == model_dropped);
	return 0;
}

static void put_frame(struct fw *w, uint32_t len, uint8_t fill)
{
	fw_u8(w, (uint8_t)(len >> 24));
	fw_u8(w, (uint8_t)(len >> 16));
	fw_u8(w, (uint8_t)(len >> 8));
	fw_u8(w, (uint8_t)len);
	for (uint32_t i = 0; i < len && w->n < sizeof(w->buf); i++)
		fw_u8(w, (uint8_t)(fill + i));
}

void fuzz_write_seeds(const char *dir)
{
	struct fw w = { .n = 0 };

	fw_u8(&w, 3);
	put_frame(&w, 60, 1);
	put_frame(&w, 0, 0);
	put_frame(&w, 1514, 2);
	put_frame(&w, 13, 3);
	put_frame(&w, 100, 4);
	fuzz_seed(dir, "frames", w.buf, w.n);
	w.n = 0;
	fw_u8(&w, 10);
	put_frame(&w, 0x7fffffff, 0);
	fuzz_seed(dir, "huge", w.buf, w.n);
}
