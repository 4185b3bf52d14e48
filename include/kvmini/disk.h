/* A disk (devices/disk/disk.c): a raw image, optionally read-only or
 * behind a snapshot overlay, with a submit/reap interface that knows
 * nothing of virtio. Requests are an operation, a byte offset, an iovec
 * list (or byte ranges to zero) and a cookie; each accepted request comes
 * back exactly once from disk_reap() with its result. The disk owns the
 * files, the lock, direct I/O and its buffered fallback, flushes, hole
 * punching, the overlay and the submission engine (disk_engine.h).
 *
 * Ordering: requests in flight together are unordered, as on a real
 * disk, with one exception: writes, discards and write-zeroes whose 4 KiB
 * blocks overlap run one after the other, in the order they came, on a
 * sparse snapshot overlay (so a block's copy-up never lands on another
 * write's data) and on an image written through O_DIRECT (so a buffered
 * write never reads a block in while a direct write to it is in flight,
 * which leaves stale data in a dirty page the kernel cannot drop). A
 * block counts as in the overlay only once its data is there: until then
 * reads take it from the base (the old data, which a read racing a write
 * may return), and a failed write leaves it there.
 *
 * Threads: not thread-safe; the caller serialises every call (virtio-blk
 * holds its device lock). disk_submit and disk_reap run on the event-loop
 * thread; disk_drain on any thread (it starts no I/O). Nothing here
 * allocates after disk_open. */
#ifndef KVMINI_DISK_H
#define KVMINI_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/disk_engine.h"
#include "kvmini/disk_image.h"
#include "kvmini/err.h"

enum disk_op { DISK_READ, DISK_WRITE, DISK_FLUSH, DISK_DISCARD, DISK_WRITE_ZEROES };

struct disk_range {
	uint64_t off, len;      /* bytes */
};

/* One request: the caller owns it (and everything it points to) from
 * disk_submit until disk_reap hands it back. */
struct disk_req {
	/* set by the caller */
	enum disk_op op;
	uint64_t off;                     /* READ, WRITE */
	const struct iovec *iov;          /* READ, WRITE */
	unsigned niov;
	const struct disk_range *ranges;  /* DISCARD, WRITE_ZEROES */
	unsigned nr_ranges;
	void *cookie;
	/* set by the disk when it hands the request back */
	int result;                       /* 0, or -errno */
	/* the disk's */
	uint64_t len;
	uint64_t first_block, last_block; /* ordered requests */
	bool ordered;
	struct disk_req *next;
	struct disk_io io;
};

struct disk_cfg {
	const char *path;
	bool readonly;          /* opened O_RDONLY; writes refused */
	bool snapshot;          /* writes go to an overlay in $TMPDIR (default /tmp) */
	const char *name;       /* for log lines: "virtio-blk0" */
	unsigned max_requests;  /* at most this many in flight at once */
	enum disk_engine_kind engine;
};

struct disk_info {
	uint64_t size;          /* bytes */
	uint32_t block_size;    /* logical block size */
	bool readonly;
	bool discard;           /* DISCARD and WRITE_ZEROES work (hole punching) */
	char serial[DISK_SERIAL_LEN + 1];
};

struct disk;

/* Opens, checks and locks @cfg->path (messages name the file and what to
 * do), creates the overlay of a snapshot, and sets up the engine. */
int disk_open(struct disk **out, const struct disk_cfg *cfg, struct kv_err *e) KV_MUST_CHECK;
/* Drains, then closes everything (the overlay vanishes). */
void disk_close(struct disk *d);
const struct disk_info *disk_info(const struct disk *d);
/* The eventfd the event loop watches: readable when disk_reap has
 * something to hand back. */
int disk_event_fd(const struct disk *d);

/* Takes @r: 0, and @r comes back from disk_reap; or -errno and nothing
 * happened (-EINVAL: a range beyond the disk or an unknown op; -EROFS: a
 * write to a read-only disk; -EOPNOTSUPP: discard on a disk without it;
 * -EBUSY: already max_requests in flight). */
int disk_submit(struct disk *d, struct disk_req *r) KV_MUST_CHECK;
typedef void (*disk_req_done)(void *opaque, struct disk_req *r);
/* Hands back finished requests (result set) to @done, in no particular
 * order, and starts requests that waited for them. Returns the count. */
unsigned disk_reap(struct disk *d, disk_req_done done, void *opaque);
/* Forgets every request: waits for the kernel to finish with their
 * buffers, drops those not started, hands nothing back. Afterwards the
 * caller may reuse every request. */
void disk_drain(struct disk *d);
/* Requests taken and not yet handed back or drained. */
unsigned disk_in_flight(const struct disk *d);

/* Tests, with cfg.engine DISK_ENGINE_MANUAL: the engine of @d, to run
 * held I/O in any order (disk_engine_run_held). */
struct disk_engine *disk_test_engine(struct disk *d);

#endif
