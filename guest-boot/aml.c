/* The AML encoder of guest-boot/aml.h. Overflowing a buffer is a bug in
 * the caller: it sets the buffer's overflow flag (reported as -ENOSPC by
 * dsdt_build) and writes nothing past the end. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->len + n > sizeof(a->b)) {
		a->overflow = true;
		return;
	}
	memcpy(a->b + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

/* PkgLength for a body of @body bytes: one byte up to 63 in all, else a
 * lead byte (count of following bytes in bits 7:6, low nibble) and the
 * rest of the length 8 bits at a time. */
void aml_pkglen(struct aml *a, size_t body)
{
	size_t total;

	if (body + 1 <= 0x3f) {
		aml_byte(a, (uint8_t)(body + 1));
		return;
	}
	for (unsigned n = 2; n <= 4; n++) {
		total = body + n;
		if (total < (1ULL << (4 + 8 * (n - 1)))) {
			aml_byte(a, (uint8_t)((n - 1) << 6 | (total & 0xf)));
			aml_le(a, total >> 4, n - 1);
			return;
		}
	}
	a->overflow = true;
}

/* @op (1 or 2 bytes), PkgLength, then @body. */
void aml_wrap(struct aml *a, const uint8_t *op, size_t oplen, const struct aml *body)
{
	aml_bytes(a, op, oplen);
	aml_pkglen(a, body->len);
	aml_bytes(a, body->b, body->len);
	a->overflow |= body->overflow;
}

void aml_int(struct aml *a, uint64_t v)
{
	if (v <= 1) {
		aml_byte(a, (uint8_t)v); /* ZeroOp, OneOp */
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD);
		aml_le(a, v, 8);
	}
}

void aml_nameseg(struct aml *a, const char *seg)
{
	assert(strlen(seg) == 4);
	aml_bytes(a, seg, 4);
}

/* Name (@seg, ...): the caller appends the value. */
void aml_name(struct aml *a, const char *seg)
{
	aml_byte(a, AML_NAME);
	aml_nameseg(a, seg);
}

void aml_name_int(struct aml *a, const char *seg, uint64_t v)
{
	aml_name(a, seg);
	aml_int(a, v);
}

void aml_name_string(struct aml *a, const char *seg, const char *str)
{
	aml_name(a, seg);
	aml_byte(a, AML_STRING);
	aml_bytes(a, str, strlen(str) + 1);
}

/* EISAID ("PNP0A08"): three letters in 5 bits each, four hex digits,
 * stored big-endian as a DWord. */
void aml_name_eisaid(struct aml *a, const char *seg, const char *id)
{
	uint16_t vendor = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	unsigned long product = strtoul(id + 3, NULL, 16);

	aml_name(a, seg);
	aml_byte(a, AML_DWORD);
	aml_byte(a, (uint8_t)(vendor >> 8));
	aml_byte(a, (uint8_t)vendor);
	aml_byte(a, (uint8_t)(product >> 8));
	aml_byte(a, (uint8_t)product);
}

/* Name (@seg, ResourceTemplate () { @res }): a Buffer holding the
 * descriptors and the end tag (checksum 0: "treat as valid"). */
void aml_name_crs(struct aml *a, const char *seg, const struct aml *res)
{
	static const uint8_t op = AML_BUFFER;
	struct aml body = { .len = 0 };

	aml_int(&body, res->len + 2);
	aml_bytes(&body, res->b, res->len);
	aml_byte(&body, 0x79);
	aml_byte(&body, 0x00);
	body.overflow |= res->overflow;
	aml_name(a, seg);
	aml_wrap(a, &op, 1, &body);
}

void aml_device(struct aml *a, const char *seg, const struct aml *body)
{
	static const uint8_t op[] = { AML_EXT, AML_DEVICE };
	struct aml named = { .len = 0 };

	aml_nameseg(&named, seg);
	aml_bytes(&named, body->b, body->len);
	named.overflow |= body->overflow;
	aml_wrap(a, op, 2, &named);
}


/* Word Address Space Descriptor (WordBusNumber, WordIO). */
void res_word(struct aml *r, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max)
{
	aml_byte(r, 0x88);
	aml_le(r, 13, 2);
	aml_byte(r, type);
	aml_byte(r, RES_PRODUCER_FIXED);
	aml_byte(r, type_flags);
	aml_le(r, 0, 2);                          /* granularity */
	aml_le(r, min, 2);
	aml_le(r, max, 2);
	aml_le(r, 0, 2);                          /* translation */
	aml_le(r, (uint32_t)max - min + 1, 2);    /* length */
}

/* DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 * NonCacheable, ReadWrite). */
void res_dword_mem(struct aml *r, uint32_t min, uint32_t max)
{
	aml_byte(r, 0x87);
	aml_le(r, 23, 2);
	aml_byte(r, RES_TYPE_MEM);
	aml_byte(r, RES_PRODUCER_FIXED);
	aml_byte(r, 0x01);                        /* ReadWrite, NonCacheable */
	aml_le(r, 0, 4);
	aml_le(r, min, 4);
	aml_le(r, max, 4);
	aml_le(r, 0, 4);
	aml_le(r, (uint64_t)max - min + 1, 4);
}

/* IO (Decode16, @base, @base, 1, @len): a consumer range. */
void res_io(struct aml *r, uint16_t base, uint8_t len)
{
	aml_byte(r, 0x47);
	aml_byte(r, 0x01);
	aml_le(r, base, 2);
	aml_le(r, base, 2);
	aml_byte(r, 1);
	aml_byte(r, len);
}

void res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len)
{
	aml_byte(r, 0x86);
	aml_le(r, 9, 2);
	aml_byte(r, 0x01);                        /* ReadWrite */
	aml_le(r, base, 4);
	aml_le(r, len, 4);
}

/* Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive) { @gsi } */
void res_ext_irq(struct aml *r, uint32_t gsi)
{
	aml_byte(r, 0x89);
	aml_le(r, 6, 2);
	aml_byte(r, 0x01);                        /* consumer; level, high, exclusive: 0 */
	aml_byte(r, 1);
	aml_le(r, gsi, 4);
}

/* IRQNoFlags () {irq}: an ISA interrupt, edge-triggered, active high. */
void res_irq_noflags(struct aml *r, unsigned irq)
{
	aml_byte(r, 0x22);
	aml_le(r, irq < 16 ? 1u << irq : 0, 2);
}
