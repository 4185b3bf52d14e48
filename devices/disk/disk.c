/* A disk: routing requests to the image or the snapshot overlay, the
 * overlay's write ordering, and completion (disk.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/disk.h"
#include "kvmini/disk_io.h"
#include "kvmini/disk_overlay.h"
#include "kvmini/log.h"

#define BLOCK DISK_OVERLAY_BLOCK

struct disk {
	char name[32];
	struct disk_info info;
	struct disk_image img;
	struct disk_overlay ov;
	bool have_overlay;
	bool sparse;                 /* have_overlay with a block map */
	bool order_writes;           /* overlapping writes run one after the other */
	int data_fd, data_direct_fd; /* where I/O goes when not routed block by block */
	struct disk_engine eng;
	unsigned max_requests, in_flight;
	/* Ordered requests: started and not yet handed back, and those
	 * waiting for an overlapping one, oldest first. */
	struct disk_req *ordered;
	struct disk_req *waiting, *waiting_tail;
	struct log_ratelimit rl;
};

/* ---- submission ---- */

static void finish(struct disk *d, struct disk_req *r, int res)
{
	disk_engine_finish(&d->eng, &r->io, res);
}

/* Reads or writes @r on @fd, or on @direct_fd (O_DIRECT) when its
 * buffers and offset suit direct I/O; the engine falls back to @fd when
 * the file system refuses. */
static void submit_rw(struct disk *d, struct disk_req *r, enum disk_io_op op, int fd,
		      int direct_fd)
{
	struct disk_io *io = &r->io;
	bool direct = direct_fd >= 0 &&
		      disk_iov_aligned(r->iov, r->niov, r->off, d->info.block_size);

	io->op = op;
	io->fd = direct ? direct_fd : fd;
	io->fallback_fd = direct ? fd : -1;
	io->iov = r->iov;
	io->niov = r->niov;
	io->off = r->off;
	io->len = r->len;
	disk_engine_submit(&d->eng, io);
}

static void start_read(struct disk *d, struct disk_req *r)
{
	if (!d->sparse) {
		submit_rw(d, r, DISK_IO_READ, d->data_fd, d->data_direct_fd);
		return;
	}
	switch (disk_overlay_source(&d->ov, r->off, r->len)) {
	case DISK_OVERLAY_BASE:
		submit_rw(d, r, DISK_IO_READ, d->img.fd, d->img.direct_fd);
		break;
	case DISK_OVERLAY_ONLY:
		submit_rw(d, r, DISK_IO_READ, d->ov.fd, -1);
		break;
	default:
		/* Spans both: run by run, here. */
		finish(d, r, disk_overlay_read(&d->ov, r->iov, r->niov, r->off));
		break;
	}
}

/* Zeroes every range of @r, here: punched holes read back as zeroes,
 * which serves DISCARD and WRITE_ZEROES alike. */
static int punch_ranges(struct disk *d, const struct disk_req *r)
{
	for (unsigned i = 0; i < r->nr_ranges; i++) {
		const struct disk_range *g = &r->ranges[i];
		int res = d->sparse ? disk_overlay_punch(&d->ov, g->off, g->len)
				    : disk_punch(d->data_fd, g->off, g->len);

		if (res < 0)
			return res;
	}
	return 0;
}

static void start_change(struct disk *d, struct disk_req *r)
{
	if (r->op != DISK_WRITE) {
		finish(d, r, punch_ranges(d, r));
		return;
	}
	if (d->sparse) {
		int res = disk_overlay_prepare(&d->ov, r->off, r->len);

		if (res < 0) {
			finish(d, r, res);
			return;
		}
	}
	submit_rw(d, r, DISK_IO_WRITE, d->data_fd, d->data_direct_fd);
}

/* ---- ordering: sparse overlays, and direct I/O next to buffered ----
 *
 * On a sparse overlay, a write's copy-up must not land on another
 * write's data. On a file written both through O_DIRECT (aligned
 * buffers) and through the page cache (the rest, and O_DIRECT refusals),
 * a buffered write that reads a page in while a direct write to that
 * page is in flight keeps the old data in a dirty page that the kernel
 * cannot drop when the direct write ends, and writes it back later over
 * the direct write. In both cases writes (and zeroings) whose 4 KiB
 * blocks overlap run one after the other, in the order they came. */

static bool overlaps(const struct disk_req *a, const struct disk_req *b)
{
	return a->first_block <= b->last_block && b->first_block <= a->last_block;
}

/* True when @r must wait: an overlapping request runs, or waits ahead of
 * it (@r itself is on the waiting list or about to join its end). */
static bool must_wait(const struct disk *d, const struct disk_req *r)
{
	for (const struct disk_req *o = d->ordered; o; o = o->next)
		if (overlaps(o, r))
			return true;
	for (const struct disk_req *w = d->waiting; w && w != r; w = w->next)
		if (overlaps(w, r))
			return true;
	return false;
}

static void start_ordered(struct disk *d, struct disk_req *r)
{
	r->next = d->ordered;
	d->ordered = r;
	start_change(d, r);
}

static void unlink_ordered(struct disk *d, struct disk_req *r)
{
	for (struct disk_req **pp = &d->ordered; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			r->next = NULL;
			return;
		}
}

/* Starts, oldest first, the waiting requests nothing holds back now. */
static void start_waiters(struct disk *d)
{
	struct disk_req **pp = &d->waiting, *prev = NULL;

	while (*pp) {
		struct disk_req *w = *pp;

		if (must_wait(d, w)) {
			prev = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (d->waiting_tail == w)
			d->waiting_tail = prev;
		start_ordered(d, w);
	}
}

static void set_blocks(struct disk_req *r)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	if (r->op == DISK_WRITE) {
		lo = r->off;
		hi = r->off + r->len;
	}
	for (unsigned i = 0; r->op != DISK_WRITE && i < r->nr_ranges; i++) {
		if (r->ranges[i].off < lo)
			lo = r->ranges[i].off;
		if (r->ranges[i].off + r->ranges[i].len > hi)
			hi = r->ranges[i].off + r->ranges[i].len;
	}
	r->first_block = lo / BLOCK;
	r->last_block = hi > lo ? (hi - 1) / BLOCK : lo / BLOCK;
}

static void submit_change(struct disk *d, struct disk_req *r)
{
	if (!d->order_writes) {
		start_change(d, r);
		return;
	}
	r->ordered = true;
	set_blocks(r);
	if (!must_wait(d, r)) {
		start_ordered(d, r);
		return;
	}
	r->next = NULL;
	if (d->waiting_tail)
		d->waiting_tail->next = r;
	else
		d->waiting = r;
	d->waiting_tail = r;
}

/* ---- the interface ---- */

static bool range_ok(const struct disk *d, uint64_t off, uint64_t len)
{
	return off <= d->info.size && len <= d->info.size - off;
}

static int check(const struct disk *d, struct disk_req *r)
{
	switch (r->op) {
	case DISK_READ:
	case DISK_WRITE:
		if ((r->niov && !r->iov) || !disk_iov_len(r->iov, r->niov, &r->len) ||
		    !range_ok(d, r->off, r->len))
			return -EINVAL;
		return r->op == DISK_WRITE && d->info.readonly ? -EROFS : 0;
	case DISK_FLUSH:
		return 0;
	case DISK_DISCARD:
	case DISK_WRITE_ZEROES:
		if (d->info.readonly)
			return -EROFS;
		if (!d->info.discard)
			return -EOPNOTSUPP;
		if (!r->nr_ranges || !r->ranges)
			return -EINVAL;
		for (unsigned i = 0; i < r->nr_ranges; i++)
			if (!r->ranges[i].len || !range_ok(d, r->ranges[i].off, r->ranges[i].len))
				return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

int disk_submit(struct disk *d, struct disk_req *r)
{
	int err = check(d, r);

	if (err)
		return err;
	if (d->in_flight >= d->max_requests)
		return -EBUSY;
	d->in_flight++;
	r->result = 0;
	r->ordered = false;
	r->next = NULL;
	if ((r->op == DISK_READ || r->op == DISK_WRITE) && r->len == 0) {
		finish(d, r, 0);
		return 0;
	}
	switch (r->op) {
	case DISK_READ:
		start_read(d, r);
		break;
	case DISK_FLUSH:
		/* A snapshot's overlay dies with us and a read-only disk is clean. */
		if (d->info.readonly || d->have_overlay) {
			finish(d, r, 0);
		} else {
			r->io.op = DISK_IO_FSYNC;
			r->io.fd = d->img.fd;
			r->io.fallback_fd = -1;
			disk_engine_submit(&d->eng, &r->io);
		}
		break;
	default:
		submit_change(d, r);
		break;
	}
	return 0;
}

struct reap_ctx {
	struct disk *d;
	disk_req_done done;
	void *opaque;
	bool draining;
};

static void io_done(void *opaque, struct disk_io *io)
{
	struct reap_ctx *c = opaque;
	struct disk *d = c->d;
	struct disk_req *r = (struct disk_req *)((char *)io - offsetof(struct disk_req, io));

	r->result = io->res;
	if (r->result < 0 && r->result != -ECANCELED)
		LOG_GUEST(&d->rl, "%s: host I/O error at byte %llu: %s", d->name,
			  (unsigned long long)(r->op == DISK_WRITE || r->op == DISK_READ ? r->off
				: r->nr_ranges ? r->ranges[0].off : 0), strerror(-r->result));
	if (r->ordered) {
		/* Only now is the data in the overlay. */
		if (d->sparse && r->op == DISK_WRITE && r->result == 0)
			disk_overlay_commit(&d->ov, r->off, r->len);
		unlink_ordered(d, r);
		if (!c->draining)
			start_waiters(d);
	}
	d->in_flight--;
	if (c->done)
		c->done(c->opaque, r);
}

unsigned disk_reap(struct disk *d, disk_req_done done, void *opaque)
{
	struct reap_ctx c = { d, done, opaque, false };

	return disk_engine_reap(&d->eng, io_done, &c);
}

void disk_drain(struct disk *d)
{
	struct reap_ctx c = { d, NULL, NULL, true };

	disk_engine_drain(&d->eng, io_done, &c);
	/* Waiting requests never started: nothing to wait for. */
	for (struct disk_req *w = d->waiting; w; w = w->next)
		d->in_flight--;
	d->waiting = d->waiting_tail = NULL;
}

unsigned disk_in_flight(const struct disk *d)
{
	return d->in_flight;
}

const struct disk_info *disk_info(const struct disk *d)
{
	return &d->info;
}

int disk_event_fd(const struct disk *d)
{
	return disk_engine_fd(&d->eng);
}

struct disk_engine *disk_test_engine(struct disk *d)
{
	return &d->eng;
}

/* ---- open / close ---- */

static int open_overlay(struct disk *d, const char *path, struct kv_err *e)
{
	const char *dir = getenv("TMPDIR");
	int r = disk_overlay_create(&d->ov, d->img.fd, d->img.size, dir && *dir ? dir : "/tmp", e);

	if (r < 0)
		return kv_err_prefix(e, "disk image %s", path);
	d->have_overlay = true;
	d->sparse = disk_overlay_sparse(&d->ov);
	d->data_fd = d->ov.fd;
	d->data_direct_fd = -1;
	d->info.discard = disk_punch_works(d->ov.fd, d->img.size);
	return 0;
}

int disk_open(struct disk **out, const struct disk_cfg *cfg, struct kv_err *e)
{
	bool snapshot = cfg->snapshot && !cfg->readonly, writable = !cfg->readonly && !snapshot;
	struct disk *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", cfg->name);
	snprintf(d->name, sizeof(d->name), "%s", cfg->name ? cfg->name : "disk");
	d->ov.fd = -1;
	d->eng.efd = -1;
	d->max_requests = cfg->max_requests ? cfg->max_requests : 1;
	r = disk_image_open(&d->img, cfg->path, writable, e);
	if (r < 0)
		goto fail_free;
	d->data_fd = d->img.fd;
	d->data_direct_fd = d->img.direct_fd;
	d->info.size = d->img.size;
	d->info.block_size = d->img.block_size;
	d->info.readonly = cfg->readonly;
	memcpy(d->info.serial, d->img.serial, sizeof(d->info.serial));
	if (snapshot)
		r = open_overlay(d, cfg->path, e);
	else if (writable)
		d->info.discard = d->img.regular && disk_punch_works(d->img.fd, d->img.size);
	if (r < 0)
		goto fail_image;
	d->order_writes = d->sparse || (writable && d->img.direct_fd >= 0);
	r = disk_engine_init(&d->eng, cfg->engine, d->max_requests, d->name, e);
	if (r < 0)
		goto fail_overlay;
	LOG_INFO("disk %s: %llu bytes, %s%s, %s I/O", cfg->path, (unsigned long long)d->info.size,
		 cfg->readonly ? "read-only" : snapshot ? "snapshot" : "read-write",
		 !d->have_overlay ? "" : d->sparse ? " (sparse overlay)" : " (reflinked overlay)",
		 d->img.direct_fd >= 0 ? "O_DIRECT" : "buffered (no O_DIRECT on this file system)");
	*out = d;
	return 0;
fail_overlay:
	if (d->have_overlay)
		disk_overlay_destroy(&d->ov);
fail_image:
	disk_image_close(&d->img);
fail_free:
	free(d);
	return r;
}

void disk_close(struct disk *d)
{
	if (!d)
		return;
	disk_drain(d);
	disk_engine_fini(&d->eng);
	if (d->have_overlay)
		disk_overlay_destroy(&d->ov);
	disk_image_close(&d->img);
	free(d);
}
