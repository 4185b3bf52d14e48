/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a reader that
 * turns the fuzzer's bytes into structured choices (running out of input
 * yields zeros, so every input is usable), a small virtio driver over
 * malloc'd guest memory that builds valid rings the input then bends,
 * and the --write-seeds mode every target has. */
#ifndef KVMINI_TESTS_FUZZ_COMMON_H
#define KVMINI_TESTS_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/virtio.h"

/* libFuzzer entry points (defined by each harness / by the common code). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Each harness: one-time setup (may be empty) and its seed corpus. */
void fuzz_init(void);
void fuzz_write_seeds(const char *dir);
/* Writes one seed file @dir/@name. */
void fuzz_seed(const char *dir, const char *name, const void *data, size_t len);

/* Aborts with a message: an invariant the code under test promised is
 * broken (libFuzzer then saves the input as a crash). */
#define FUZZ_CHECK(cond)                                                        \
	do {                                                                    \
		if (!(cond))                                                    \
			fuzz_fail(__FILE__, __LINE__, #cond);                   \
	} while (0)
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* ---- input reader ---- */
struct fz {
	const uint8_t *p;
	size_t n;
};
uint8_t fz_u8(struct fz *f);
uint16_t fz_u16(struct fz *f);
uint32_t fz_u32(struct fz *f);
uint64_t fz_u64(struct fz *f);
/* Copies up to @len bytes (zero-filled past the end); returns bytes taken. */
size_t fz_bytes(struct fz *f, void *dst, size_t len);
static inline bool fz_empty(const struct fz *f) { return f->n == 0; }

/* Little-endian byte-buffer writer for seeds. */
struct fw {
	uint8_t buf[4096];
	size_t n;
};
void fw_u8(struct fw *w, uint8_t v);
void fw_u16(struct fw *w, uint16_t v);
void fw_u32(struct fw *w, uint32_t v);
void fw_u64(struct fw *w, uint64_t v);

/* ---- a driver for one split ring in fuzz guest memory ---- */
#define FR_RAM_SIZE  (1u << 20)  /* fr_init's; fr_init_sized picks another */
#define FR_DATA_START 0x40000u   /* buffers live in [data_start, ram_size) */

struct fr_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t next_desc;   /* descriptors handed out round-robin */
	uint16_t avail_idx;
	uint16_t used_seen;
};

struct fr {
	struct guest_mem gm;
	uint8_t *ram;
	size_t ram_size;
	uint64_t data_start;
	uint8_t *shadow;      /* the guest's view of RAM (fr_init_sized), or NULL */
	uint64_t data_next;   /* bump allocator that wraps inside the data area */
	uint64_t indirect_next;
	struct fr_queue q[VIRTIO_MAX_QUEUES];
	struct virtio_transport_ops tops;
	unsigned irqs, config_irqs;
	bool used_poked;      /* the input wrote the used ring: its entries are not the device's */
};

/* One-time: allocates RAM. Per input: fr_reset clears it. */
void fr_init(struct fr *r);
/* The same with @ram_size bytes of RAM, buffers from @data_start, and
 * when @shadow a copy of RAM as the guest wrote it, for fr_shadow_check. */
void fr_init_sized(struct fr *r, size_t ram_size, uint64_t data_start, bool shadow);
void fr_reset(struct fr *r);
/* The guest writes @len bytes at @gpa (inside RAM): RAM and the shadow. */
void fr_gwrite(struct fr *r, uint64_t gpa, const void *src, size_t len);

/* Oracle: every byte of RAM that differs from the shadow (so was written
 * by the device since the last check) lies in one of the @n ranges of
 * @allowed; then the shadow takes the new contents. */
struct fr_range {
	uint64_t gpa, len;
};
void fr_shadow_check(struct fr *r, const struct fr_range *allowed, unsigned n);
/* Lays queue @qi out at fixed, valid addresses for @size. */
void fr_layout(struct fr *r, unsigned qi, uint16_t size);
/* Negotiates @features of @dev's offer, enables its queues with their
 * sizes set by fr_layout (max_size when @size is 0) and sets DRIVER_OK. */
void fr_attach(struct fr *r, struct virtio_dev *dev, uint64_t features, uint16_t size);

struct fr_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};
/* A buffer of @len bytes in the data area (wrapping); contents left as is. */
uint64_t fr_alloc(struct fr *r, uint32_t len);
/* Writes a chain of @n segments, direct or as one indirect table, and
 * makes it available (no kick). Returns the head. */
uint16_t fr_post(struct fr *r, unsigned qi, const struct fr_seg *s, unsigned n, bool indirect);
/* The next used entry: false when none. */
bool fr_used(struct fr *r, unsigned qi, uint32_t *id, uint32_t *len);
/* Host pointer for guest address @gpa (inside RAM). */
static inline uint8_t *fr_host(struct fr *r, uint64_t gpa) { return r->ram + gpa; }
/* Overwrites @len (<= 8) bytes at ring-area offset @off of queue @qi's
 * descriptor table / avail / used ring (selected by @which 0..2). */
void fr_poke(struct fr *r, unsigned qi, unsigned which, uint32_t off, uint64_t v, unsigned len);

/* ---- an independent model of vq_pop, for oracles ---- */
struct fr_chain_model {
	uint16_t head;
	unsigned n;                         /* buffers (zero-length ones skipped) */
	struct fr_seg seg[VIRTQ_MAX_SIZE];
	uint64_t out_len, in_len;
};
/* What vq_pop(@vq, .., @iov_cap) must do now, from @vq's configuration
 * and ring state and the memory (written out in the spec's terms, not
 * queue.c's): 1 with @m the chain, 0 when there is none, -1 when the
 * driver broke a rule. Call it before vq_pop. */
int fr_model_pop(const struct fr *r, const struct virtq *vq, unsigned iov_cap,
		 struct fr_chain_model *m);
/* vq_pop returned @ret (and @c): it agrees with the model's @mret / @m. */
void fr_model_check(const struct fr *r, int mret, const struct fr_chain_model *m, int ret,
		    const struct vq_chain *c);

#endif
