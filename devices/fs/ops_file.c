/* FUSE operations on open files: OPEN, CREATE, READ, WRITE, FLUSH, FSYNC,
 * RELEASE, FALLOCATE, LSEEK.
 *
 * OPEN re-opens the inode's O_PATH fd (host.c: fs_reopen) and only for a
 * regular file: a symlink is never followed (ELOOP), a directory needs
 * OPENDIR (EISDIR), and a FIFO, socket or device node is not opened on
 * the host at all (ENXIO; the guest kernel serves its own). READ and
 * WRITE move data straight between the file and the guest's buffers
 * (preadv/pwritev on the iovecs), with no copy. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_internal.h"

#define GUEST_PERM_BITS (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX)

/* The host open flags for the guest's: access mode, O_APPEND, O_TRUNC
 * (FUSE_ATOMIC_O_TRUNC), O_SYNC/O_DSYNC; everything else (O_CREAT,
 * O_DIRECT, O_NOATIME, O_PATH, ...) dropped. */
static int host_flags(const struct fuse_server *s, uint32_t guest, int *flags)
{
	int acc = (int)guest & O_ACCMODE;

	if (acc == O_ACCMODE)
		return -EINVAL;
	if (s->readonly && (acc != O_RDONLY || (guest & O_TRUNC)))
		return -EROFS;
	*flags = acc | ((int)guest & (O_APPEND | O_TRUNC | O_SYNC | O_DSYNC));
	return 0;
}

/* FOPEN_NOFLUSH: a FLUSH (sent at each close() in the guest) has nothing
 * to do here (no POSIX locks are served, writes are written through at
 * once), so the guest is told not to send it: one round trip less per
 * file opened (Linux 5.16 and later; an older guest ignores the bit and
 * its FLUSHes are still answered). */
static uint32_t fopen_flags(const struct fuse_server *s)
{
	if (s->cache == FUSE_CACHE_NEVER)
		return FOPEN_DIRECT_IO | FOPEN_NOFLUSH;
	if (s->cache == FUSE_CACHE_ALWAYS)
		return FOPEN_KEEP_CACHE | FOPEN_NOFLUSH;
	return FOPEN_NOFLUSH;
}

static int type_error(mode_t mode)
{
	if (S_ISDIR(mode))
		return -EISDIR;
	if (S_ISLNK(mode))
		return -ELOOP;
	return S_ISREG(mode) ? 0 : -ENXIO;
}

/* Registers @fd as a handle and fills @o; closes @fd on failure. */
static int add_handle(struct fuse_server *s, int fd, bool dir, uint32_t open_flags,
		      struct fuse_open_out *o)
{
	uint64_t fh;
	int err = fs_htab_add(&s->handles, fd, dir, &fh);

	if (err) {
		close(fd);
		fs_log_guest(s, "handle table full (%u open files): opens fail with ENFILE",
			     s->handles.cap);
		return err;
	}
	memset(o, 0, sizeof(*o));
	o->fh = fh;
	o->open_flags = open_flags;
	return 0;
}

int fs_op_open(struct fs_req *r)
{
	struct fs_iref ref;
	int flags, fd, err = host_flags(r->s, r->p.a.open.flags, &flags);

	if (err)
		return err;
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	err = type_error(ref.mode);
	fd = err ? err : fs_reopen(&r->s->host, ref.fd, flags);
	fs_itab_put(&r->s->inodes, &ref);
	if (fd < 0)
		return fd;
	err = add_handle(r->s, fd, false, fopen_flags(r->s), (struct fuse_open_out *)r->sc->reply);
	if (!err)
		r->reply_len = sizeof(struct fuse_open_out);
	return err;
}

/* CREATE on a name that exists, without O_EXCL: open the existing file
 * (a regular one only) as OPEN would. Fills @e with one new lookup. */
static int create_open_existing(struct fs_req *r, const struct fs_iref *parent, int flags,
				struct fuse_entry_out *e)
{
	struct fuse_server *s = r->s;
	struct fs_iref ref;
	int fd, err = fs_do_lookup(s, parent, r->p.name, FUSE_NAME_PLAIN, e);

	if (err)
		return err;
	err = fs_itab_get(&s->inodes, e->nodeid, &ref);
	if (err)
		return err; /* forgotten meanwhile by a hostile guest */
	err = type_error(ref.mode);
	fd = err ? err : fs_reopen(&s->host, ref.fd, flags);
	fs_itab_put(&s->inodes, &ref);
	if (fd < 0)
		fs_itab_forget(&s->inodes, e->nodeid, 1);
	return fd;
}

/* After creating @fd under @parent: its entry (one new lookup), checked
 * to be the very inode created (not one renamed in meanwhile). */
static int create_lookup(struct fs_req *r, const struct fs_iref *parent, int fd,
			 struct fuse_entry_out *e)
{
	struct fuse_server *s = r->s;
	struct fs_iref ref;
	struct stat st;
	int err = fs_stat_fd(fd, &st);

	if (!err)
		err = fs_do_lookup(s, parent, r->p.name, FUSE_NAME_PLAIN, e);
	if (err)
		return err;
	err = fs_itab_get(&s->inodes, e->nodeid, &ref);
	if (err)
		return err;
	if (ref.dev != (uint64_t)st.st_dev || ref.ino != (uint64_t)st.st_ino)
		err = -EIO;
	fs_itab_put(&s->inodes, &ref);
	if (err)
		fs_itab_forget(&s->inodes, e->nodeid, 1);
	return err;
}

int fs_op_create(struct fs_req *r)
{
	const struct fuse_create_in *in = &r->p.a.create;
	struct fuse_entry_out *e = (struct fuse_entry_out *)r->sc->reply;
	struct fuse_open_out *o = (struct fuse_open_out *)(e + 1);
	struct fs_iref parent;
	int flags, fd, err;

	if (r->p.dot != FUSE_NAME_PLAIN)
		return -EINVAL;
	err = host_flags(r->s, in->flags, &flags);
	if (err)
		return err;
	err = fs_get_node(r, &parent);
	if (err)
		return err;
	fd = fs_open_component_flags(&r->s->host, parent.fd, r->p.name,
				     flags | O_CREAT | O_EXCL | O_NOCTTY | O_NONBLOCK,
				     in->mode & GUEST_PERM_BITS);
	if (fd == -EEXIST && !(in->flags & O_EXCL)) {
		fd = create_open_existing(r, &parent, flags, e);
	} else if (fd >= 0) {
		err = create_lookup(r, &parent, fd, e);
		if (err) {
			close(fd);
			fd = err;
		}
	}
	fs_itab_put(&r->s->inodes, &parent);
	if (fd < 0)
		return fd;
	err = add_handle(r->s, fd, false, fopen_flags(r->s), o);
	if (err) {
		fs_itab_forget(&r->s->inodes, e->nodeid, 1);
		return err;
	}
	r->reply_len = sizeof(*e) + sizeof(*o);
	return 0;
}

/* The handle of a file request; -EISDIR for a directory's. */
static int get_file(struct fs_req *r, uint64_t fh, struct fs_handle **h)
{
	int err = fs_htab_get(&r->s->handles, fh, h);

	if (!err && (*h)->dir) {
		fs_htab_put(&r->s->handles, *h);
		return -EISDIR;
	}
	return err;
}

/* Drops @done bytes from the front of @iov (@n entries). */
static void iov_advance(struct iovec **iov, int *n, size_t done)
{
	while (*n > 0 && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

int fs_op_read(struct fs_req *r)
{
	const struct fuse_read_in *in = &r->p.a.read;
	size_t room = r->p.out_space - sizeof(struct fuse_out_header);
	size_t want = in->size < room ? in->size : room, done = 0;
	struct iovec *iov = r->sc->iov;
	struct fs_handle *h;
	int n, err;

	if (in->offset > INT64_MAX)
		return -EINVAL;
	err = get_file(r, in->fh, &h);
	if (err)
		return err;
	n = fuse_iov_slice(r->out, r->nout, sizeof(struct fuse_out_header), want, iov,
			   FUSE_SERVER_MAX_IOV);
	while (n > 0 && done < want) {
		ssize_t got = preadv(h->fd, iov, n, (off_t)(in->offset + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			if (!done)
				err = -errno;
			break;
		}
		if (got == 0)
			break; /* end of file */
		done += (size_t)got;
		iov_advance(&iov, &n, (size_t)got);
	}
	fs_htab_put(&r->s->handles, h);
	r->in_place = true;
	r->reply_len = done;
	return err;
}

int fs_op_write(struct fs_req *r)
{
	const struct fuse_write_in *in = &r->p.a.write;
	struct fuse_write_out *o = (struct fuse_write_out *)r->sc->reply;
	struct iovec *iov = r->sc->iov;
	size_t want = r->p.data_len, done = 0;
	struct fs_handle *h;
	int n, err;

	if (in->offset > INT64_MAX || want > INT64_MAX - in->offset)
		return -EINVAL;
	err = get_file(r, in->fh, &h);
	if (err)
		return err;
	n = fuse_iov_slice(r->in, r->nin, r->p.data_off, want, iov, FUSE_SERVER_MAX_IOV);
	while (n > 0 && done < want) {
		ssize_t put = pwritev(h->fd, iov, n, (off_t)(in->offset + done));

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0) {
			if (!done)
				err = put < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)put;
		iov_advance(&iov, &n, (size_t)put);
	}
	fs_htab_put(&r->s->handles, h);
	if (err)
		return err;
	memset(o, 0, sizeof(*o));
	o->size = (uint32_t)done;
	r->reply_len = sizeof(*o);
	return 0;
}

int fs_op_flush(struct fs_req *r)
{
	struct fs_handle *h;
	int err = fs_htab_get(&r->s->handles, r->p.a.flush.fh, &h);

	/* Each guest close(): nothing to do for a local host file (no
	 * POSIX locks are served). */
	if (!err)
		fs_htab_put(&r->s->handles, h);
	return err;
}

/* FSYNC and FSYNCDIR. */
static int do_fsync(struct fs_req *r, bool dir)
{
	const struct fuse_fsync_in *in = &r->p.a.fsync;
	struct fs_handle *h;
	int err = fs_htab_get(&r->s->handles, in->fh, &h);

	if (err)
		return err;
	if (h->dir != dir)
		err = dir ? -ENOTDIR : -EISDIR;
	else if (in->fsync_flags & FUSE_FSYNC_FDATASYNC)
		err = fdatasync(h->fd) < 0 ? -errno : 0;
	else
		err = fsync(h->fd) < 0 ? -errno : 0;
	fs_htab_put(&r->s->handles, h);
	return err;
}

int fs_op_fsync(struct fs_req *r)
{
	return do_fsync(r, false);
}

int fs_op_fsyncdir(struct fs_req *r)
{
	return do_fsync(r, true);
}

int fs_op_release(struct fs_req *r)
{
	return fs_htab_release(&r->s->handles, r->p.a.release.fh);
}

int fs_op_fallocate(struct fs_req *r)
{
	const struct fuse_fallocate_in *in = &r->p.a.fallocate;
	const uint32_t allowed = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
				 FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
				 FALLOC_FL_INSERT_RANGE;
	struct fs_handle *h;
	int err;

	if (in->mode & ~allowed)
		return -EOPNOTSUPP;
	if (in->offset > INT64_MAX || in->length > INT64_MAX - in->offset)
		return -EINVAL;
	err = get_file(r, in->fh, &h);
	if (err)
		return err;
	if (fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0)
		err = -errno;
	fs_htab_put(&r->s->handles, h);
	return err;
}

int fs_op_lseek(struct fs_req *r)
{
	const struct fuse_lseek_in *in = &r->p.a.lseek;
	struct fuse_lseek_out *o = (struct fuse_lseek_out *)r->sc->reply;
	struct fs_handle *h;
	off_t pos;
	int err;

	/* The guest kernel answers SEEK_SET/CUR/END itself. */
	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE)
		return -EINVAL;
	if (in->offset > INT64_MAX)
		return -ENXIO;
	err = get_file(r, in->fh, &h);
	if (err)
		return err;
	pos = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	if (pos < 0)
		err = -errno;
	fs_htab_put(&r->s->handles, h);
	if (err)
		return err;
	memset(o, 0, sizeof(*o));
	o->offset = (uint64_t)pos;
	r->reply_len = sizeof(*o);
	return 0;
}
