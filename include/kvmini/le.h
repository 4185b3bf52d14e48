/* Little-endian loads and stores on byte arrays: register files (PCI
 * configuration space, MSI-X tables, virtio common configuration) that
 * a guest reads and writes at any size and alignment. */
#ifndef KVMINI_LE_H
#define KVMINI_LE_H

#include <stdint.h>

static inline uint16_t le16_load(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32_load(const uint8_t *p)
{
	return le16_load(p) | (uint32_t)le16_load(p + 2) << 16;
}

static inline uint64_t le64_load(const uint8_t *p)
{
	return le32_load(p) | (uint64_t)le32_load(p + 4) << 32;
}

static inline void le16_store(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void le32_store(uint8_t *p, uint32_t v)
{
	le16_store(p, (uint16_t)v);
	le16_store(p + 2, (uint16_t)(v >> 16));
}

static inline void le64_store(uint8_t *p, uint64_t v)
{
	le32_store(p, (uint32_t)v);
	le32_store(p + 4, (uint32_t)(v >> 32));
}

/* The first @len (<= 8) bytes at @p as a little-endian number. */
static inline uint64_t le_load(const void *p, unsigned len)
{
	const uint8_t *b = p;
	uint64_t v = 0;

	for (unsigned i = len > 8 ? 8 : len; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

#endif
