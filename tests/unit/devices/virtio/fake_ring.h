/* A split virtqueue in malloc'd "guest memory" for unit tests: the test
 * plays the driver (descriptors, avail ring, event fields) and checks
 * what the device side wrote (used ring, flags, avail_event). */
#ifndef KVMINI_TEST_FAKE_RING_H
#define KVMINI_TEST_FAKE_RING_H

#include <stdint.h>

#include "kvmini/virtio.h"

/* Guest RAM: [FR_RAM_GPA, FR_RAM_GPA + FR_RAM_SIZE). */
#define FR_RAM_GPA  0x100000ULL
#define FR_RAM_SIZE 0x40000ULL

struct fake_ring {
	struct guest_mem gm;
	uint8_t *ram;
	struct virtq vq;
	uint16_t avail_idx;   /* the driver's shadow of avail->idx */
	uint64_t next_data;   /* bump allocator for buffers and tables */
};

/* Guest memory plus a queue of @size laid out in it, configured (not
 * enabled: call vq_enable or fr_enable). */
void fr_init(struct fake_ring *f, uint16_t size);
void fr_fini(struct fake_ring *f);
/* vq_enable, asserting success. */
void fr_enable(struct fake_ring *f, bool event_idx, bool indirect);

/* Host pointer for guest address @gpa (asserts it is RAM). */
void *fr_host(struct fake_ring *f, uint64_t gpa);
/* @len bytes of zeroed guest memory, 16-byte aligned. */
uint64_t fr_alloc(struct fake_ring *f, uint32_t len);

/* Descriptor @i of the table at @table (the queue's: f->vq.desc_gpa). */
void fr_desc(struct fake_ring *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
	     uint16_t flags, uint16_t next);
/* Makes @head available and advances avail->idx by one. */
void fr_publish(struct fake_ring *f, uint16_t head);
/* Sets avail->idx directly (hostile jumps). */
void fr_set_avail_idx(struct fake_ring *f, uint16_t idx);

void fr_set_avail_flags(struct fake_ring *f, uint16_t flags);
void fr_set_used_event(struct fake_ring *f, uint16_t v);
uint16_t fr_used_flags(struct fake_ring *f);
uint16_t fr_used_idx(struct fake_ring *f);
uint16_t fr_avail_event(struct fake_ring *f);
/* Used element @slot: id and len. */
void fr_used_elem(struct fake_ring *f, uint16_t slot, uint32_t *id, uint32_t *len);

#endif
