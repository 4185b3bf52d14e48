/* A tiny AML encoder for the parts of the DSDT that depend on the VM
 * (guest-boot/aml.c; private to guest-boot/ and its unit tests). ACPI 6.x
 * §20.2 terms and §6.4 resource descriptors: each block is built into its
 * own buffer, then wrapped with its PkgLength, which counts itself and
 * everything after it up to the block's end. */
#ifndef KVMINI_GUEST_BOOT_AML_H
#define KVMINI_GUEST_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX 4096 /* the whole generated part fits easily */

struct aml {
	uint8_t b[AML_MAX];
	size_t len;
	bool overflow;  /* a bug in this file, reported as -ENOSPC */
};

#define AML_NAME     0x08
#define AML_BYTE     0x0a
#define AML_WORD     0x0b
#define AML_DWORD    0x0c
#define AML_STRING   0x0d
#define AML_QWORD    0x0e
#define AML_SCOPE    0x10
#define AML_BUFFER   0x11
#define AML_PACKAGE  0x12
#define AML_EXT      0x5b
#define AML_DEVICE   0x82

/* Resource descriptors (ACPI 6.x §6.4). */
#define RES_PRODUCER_FIXED 0x0c /* ResourceProducer, MinFixed, MaxFixed, PosDecode */
#define RES_TYPE_MEM   0
#define RES_TYPE_IO    1
#define RES_TYPE_BUS   2

void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t v);
void aml_le(struct aml *a, uint64_t v, unsigned n);
void aml_pkglen(struct aml *a, size_t body);
void aml_wrap(struct aml *a, const uint8_t *op, size_t oplen, const struct aml *body);
void aml_int(struct aml *a, uint64_t v);
void aml_nameseg(struct aml *a, const char *seg);
void aml_name(struct aml *a, const char *seg);
void aml_name_int(struct aml *a, const char *seg, uint64_t v);
void aml_name_string(struct aml *a, const char *seg, const char *str);
void aml_name_eisaid(struct aml *a, const char *seg, const char *id);
void aml_name_crs(struct aml *a, const char *seg, const struct aml *res);
void aml_device(struct aml *a, const char *seg, const struct aml *body);
void res_word(struct aml *r, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max);
void res_dword_mem(struct aml *r, uint32_t min, uint32_t max);
void res_io(struct aml *r, uint16_t base, uint8_t len);
void res_mem32_fixed(struct aml *r, uint32_t base, uint32_t len);
void res_ext_irq(struct aml *r, uint32_t gsi);
void res_irq_noflags(struct aml *r, unsigned irq);

#endif
