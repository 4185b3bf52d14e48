/* The disk layer's submission engine (disk_engine.h): Linux AIO with an
 * eventfd, or synchronous I/O, behind one submit/reap interface. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/disk_engine.h"
#include "kvmini/disk_io.h"
#include "kvmini/log.h"

#define REAP_BATCH 32

/* ---- lists ---- */

static void list_push(struct disk_io_list *l, struct disk_io *io, bool front)
{
	io->next = NULL;
	if (!l->head) {
		l->head = l->tail = io;
	} else if (front) {
		io->next = l->head;
		l->head = io;
	} else {
		l->tail->next = io;
		l->tail = io;
	}
	l->n++;
}

static struct disk_io *list_pop(struct disk_io_list *l)
{
	struct disk_io *io = l->head;

	if (io) {
		l->head = io->next;
		if (!l->head)
			l->tail = NULL;
		l->n--;
		io->next = NULL;
	}
	return io;
}

/* Takes the @k-th entry out of @l. */
static struct disk_io *list_take(struct disk_io_list *l, unsigned k)
{
	struct disk_io **pp = &l->head, *prev = NULL;

	for (; *pp && k; k--) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	struct disk_io *io = *pp;

	if (!io)
		return NULL;
	*pp = io->next;
	if (l->tail == io)
		l->tail = prev;
	l->n--;
	io->next = NULL;
	return io;
}

/* ---- the one place an O_DIRECT refusal turns into buffered I/O ---- */

/* True when @io got EINVAL on an O_DIRECT fd and now targets its
 * buffered fallback (the file system cannot do direct I/O with these
 * buffers, this offset or at all): the caller redoes it. */
static bool fall_back(struct disk_io *io, long res)
{
	if (res != -EINVAL || io->fallback_fd < 0)
		return false;
	io->fd = io->fallback_fd;
	io->fallback_fd = -1;
	return true;
}

/* A kernel result as the engine reports it. */
static int normalise(const struct disk_io *io, long res)
{
	if (res < 0)
		return (int)res;
	if (io->op != DISK_IO_FSYNC && (uint64_t)res != io->len)
		return -EIO; /* a short transfer: EOF, or the file system filled up */
	return 0;
}

static int run_sync(struct disk_io *io)
{
	for (;;) {
		int r;

		switch (io->op) {
		case DISK_IO_READ:
			r = disk_preadv_full(io->fd, io->iov, io->niov, io->off);
			break;
		case DISK_IO_WRITE:
			r = disk_pwritev_full(io->fd, io->iov, io->niov, io->off);
			break;
		default:
			r = fdatasync(io->fd) < 0 ? -errno : 0;
			break;
		}
		if (!fall_back(io, r))
			return r;
	}
}

/* ---- completion ---- */

static void signal_ready(struct disk_engine *e)
{
	uint64_t one = 1;

	/* Fails only when the counter is at its maximum: already signalled. */
	if (write(e->efd, &one, sizeof(one)) < 0) {
	}
}

/* Onto the done list, without a signal: for callers that empty it next. */
static void finish_quiet(struct disk_engine *e, struct disk_io *io, int res)
{
	io->res = res;
	list_push(&e->done, io, false);
}

void disk_engine_finish(struct disk_engine *e, struct disk_io *io, int res)
{
	finish_quiet(e, io, res);
	signal_ready(e);
}

/* ---- Linux AIO ---- */

static void prep_iocb(struct disk_engine *e, struct disk_io *io)
{
	struct iocb *cb = &io->iocb;

	if (io->op == DISK_IO_READ)
		io_prep_preadv(cb, io->fd, io->iov, (int)io->niov, (long long)io->off);
	else if (io->op == DISK_IO_WRITE)
		io_prep_pwritev(cb, io->fd, io->iov, (int)io->niov, (long long)io->off);
	else
		io_prep_fdsync(cb, io->fd);
	cb->data = io;
	io_set_eventfd(cb, e->efd);
}

/* Hands @io to the kernel. False when it must wait (EAGAIN with I/O in
 * flight whose completion will retry it); anything else ends in the
 * kernel or on the done list. */
static bool submit_aio(struct disk_engine *e, struct disk_io *io)
{
	for (;;) {
		struct iocb *cb = &io->iocb;
		int r;

		if (e->in_kernel >= e->depth)
			return false;
		prep_iocb(e, io);
		r = io_submit(e->ctx, 1, &cb);
		if (r == 1) {
			e->in_kernel++;
			return true;
		}
		if (fall_back(io, r))
			continue;
		if (r == -EAGAIN && e->in_kernel > 0)
			return false;
		if (io->op == DISK_IO_FSYNC && r == -EINVAL && e->aio_fsync) {
			LOG_INFO("%s: no IOCB_CMD_FDSYNC in this kernel: flushes are synchronous",
				 e->name);
			e->aio_fsync = false;
		}
		/* Out of kernel resources with nothing in flight, or a flush
		 * AIO cannot do: do it here rather than stall. */
		if (r == -EAGAIN || io->op == DISK_IO_FSYNC)
			r = run_sync(io);
		disk_engine_finish(e, io, r);
		return true;
	}
}

static void submit_pending(struct disk_engine *e)
{
	struct disk_io *io;

	/* Off the list first: submit_aio may finish it onto the done list. */
	while ((io = list_pop(&e->pending))) {
		if (!submit_aio(e, io)) {
			list_push(&e->pending, io, true);
			return;
		}
	}
}

/* Moves finished AIO to the done list: what is there now, or, with
 * @wait_all, everything the kernel holds. */
static void take_events(struct disk_engine *e, bool wait_all)
{
	struct io_event ev[REAP_BATCH];

	while (e->in_kernel > 0) {
		int n = io_getevents(e->ctx, wait_all ? 1 : 0, REAP_BATCH, ev, NULL);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			LOG_ERR("%s: io_getevents: %s", e->name, strerror(-n));
			return;
		}
		if (n == 0)
			return;
		for (int i = 0; i < n; i++) {
			struct disk_io *io = ev[i].data;
			long res = (long)ev[i].res;

			e->in_kernel--;
			if (fall_back(io, res))
				list_push(&e->pending, io, true);
			else
				finish_quiet(e, io, normalise(io, res)); /* reap and drain empty it */
		}
	}
}

/* ---- the interface ---- */

int disk_engine_init(struct disk_engine *e, enum disk_engine_kind kind, unsigned depth,
		     const char *name, struct kv_err *err)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->kind = kind;
	e->depth = depth ? depth : 1;
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0)
		return kv_err_set(err, -errno, "%s: eventfd: %s", name, strerror(errno));
	if (kind != DISK_ENGINE_AUTO)
		return 0;
	int r = io_setup((int)e->depth, &e->ctx);

	if (r < 0) {
		LOG_WARN("%s: no Linux AIO (io_setup: %s): synchronous I/O on the event loop",
			 name, strerror(-r));
		e->kind = DISK_ENGINE_SYNC;
		return 0;
	}
	e->aio_fsync = true; /* until the kernel says otherwise */
	return 0;
}

void disk_engine_fini(struct disk_engine *e)
{
	if (e->kind == DISK_ENGINE_AUTO)
		io_destroy(e->ctx);
	if (e->efd >= 0)
		close(e->efd);
	e->efd = -1;
	e->kind = DISK_ENGINE_SYNC;
}

int disk_engine_fd(const struct disk_engine *e)
{
	return e->efd;
}

void disk_engine_submit(struct disk_engine *e, struct disk_io *io)
{
	io->res = 0;
	io->ran = false;
	switch (e->kind) {
	case DISK_ENGINE_MANUAL:
		list_push(&e->held, io, false);
		break;
	case DISK_ENGINE_SYNC:
		disk_engine_finish(e, io, run_sync(io));
		break;
	default:
		if (io->op == DISK_IO_FSYNC && !e->aio_fsync)
			disk_engine_finish(e, io, run_sync(io));
		else if (e->pending.head || !submit_aio(e, io))
			list_push(&e->pending, io, false);
		break;
	}
}

unsigned disk_engine_reap(struct disk_engine *e, disk_io_done done, void *opaque)
{
	unsigned count = 0;
	uint64_t cnt;

	/* Clear the signal first: whatever finishes after this signals again. */
	if (read(e->efd, &cnt, sizeof(cnt)) < 0) {
		/* EAGAIN: nothing signalled; look anyway, it is cheap. */
	}
	if (e->kind == DISK_ENGINE_AUTO) {
		take_events(e, false);
		submit_pending(e);
	}
	for (struct disk_io *io; (io = list_pop(&e->done)); count++)
		done(opaque, io);
	return count;
}

void disk_engine_drain(struct disk_engine *e, disk_io_done done, void *opaque)
{
	struct disk_io *io;

	if (e->kind == DISK_ENGINE_AUTO)
		take_events(e, true);
	while ((io = list_pop(&e->pending)))
		disk_engine_finish(e, io, -ECANCELED);
	while ((io = list_pop(&e->held)))
		disk_engine_finish(e, io, io->ran ? io->res : -ECANCELED);
	while ((io = list_pop(&e->done)))
		done(opaque, io);
}

unsigned disk_engine_held(const struct disk_engine *e)
{
	return e->held.n;
}

int disk_engine_run_held(struct disk_engine *e, unsigned k, bool hand_back)
{
	struct disk_io *io;

	if (k >= e->held.n)
		return -ENOENT;
	if (!hand_back) {
		io = e->held.head;
		for (; k; k--)
			io = io->next;
		if (!io->ran) {
			io->res = run_sync(io);
			io->ran = true;
		}
		return 0;
	}
	io = list_take(&e->held, k);
	disk_engine_finish(e, io, io->ran ? io->res : run_sync(io));
	return 0;
}
