/* FUSE operations on directories: OPENDIR, READDIR, READDIRPLUS,
 * RELEASEDIR (FSYNCDIR is with FSYNC in ops_file.c).
 *
 * A directory handle is the directory opened for reading ("." under its
 * O_PATH fd). READDIR sends entries from the guest's offset (the d_off
 * of the last entry it got) until the reply is full. When that offset
 * is where the last reply ended, the handle goes on from where it
 * stands: first the entries it read but could not send then (kept in
 * the handle), then the host stream, never seeked. Only another offset
 * seeks. A seek to where a reply ended would not do: on file systems
 * whose offsets count entries from the start (tmpfs before Linux 6.6,
 * ramfs), after the guest removed entries it lands past as many entries
 * as were removed, which `rm -rf` then never sees and cannot rmdir
 * (ENOTEMPTY). The handle's mutex keeps one request's reads together.
 * READDIRPLUS also looks each entry
 * up (one lookup each, as LOOKUP would), only once the entry is known
 * to fit in the reply, so no lookup is counted for an entry the guest
 * never sees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"

int fs_op_opendir(struct fs_req *r)
{
	struct fuse_open_out *o = (struct fuse_open_out *)r->sc->reply;
	struct fs_iref ref;
	uint64_t fh;
	int fd, err = fs_get_node(r, &ref);

	if (err)
		return err;
	if (!S_ISDIR(ref.mode))
		fd = -ENOTDIR;
	else if ((fd = openat(ref.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK)) < 0)
		fd = -errno;
	fs_itab_put(&r->s->inodes, &ref);
	if (fd < 0)
		return fd;
	err = fs_htab_add(&r->s->handles, fd, true, &fh);
	if (err) {
		close(fd);
		fs_log_guest(r->s, "handle table full (%u open files): opens fail with ENFILE",
			     r->s->handles.cap);
		return err;
	}
	memset(o, 0, sizeof(*o));
	o->fh = fh;
	if (r->s->cache == FUSE_CACHE_ALWAYS)
		o->open_flags = FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
	r->reply_len = sizeof(*o);
	return 0;
}

int fs_op_releasedir(struct fs_req *r)
{
	return fs_htab_release(&r->s->handles, r->p.a.release.fh);
}

struct dir_fill {
	struct fuse_server *s;
	const struct fs_iref *parent; /* READDIRPLUS: whose entries are looked up */
	uint8_t *buf;
	size_t size, pos;
};

static bool is_dot(const char *name, size_t len)
{
	return name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.'));
}

/* Appends one entry; false when it does not fit (the reply is full). */
static bool emit(struct dir_fill *f, const struct dirent64 *d)
{
	size_t len = strnlen(d->d_name, d->d_reclen);
	size_t off = f->parent ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t rec = FUSE_DIRENT_ALIGN(off + len);
	struct fuse_dirent *de;

	if (len == 0 || rec > f->size - f->pos)
		return false;
	uint8_t *at = f->buf + f->pos;

	memset(at, 0, rec);
	if (f->parent) {
		struct fuse_direntplus *dp = (struct fuse_direntplus *)at;

		/* nodeid 0 tells the guest "no attributes for this one": for
		 * "." and "..", and when the lookup fails (e.g. ENFILE). */
		if (!is_dot(d->d_name, len) &&
		    fs_do_lookup(f->s, f->parent, d->d_name, FUSE_NAME_PLAIN, &dp->entry_out) < 0)
			memset(&dp->entry_out, 0, sizeof(dp->entry_out));
		de = &dp->dirent;
	} else {
		de = (struct fuse_dirent *)at;
	}
	de->ino = d->d_ino;
	de->off = (uint64_t)d->d_off;
	de->namelen = (uint32_t)len;
	de->type = d->d_type;
	memcpy(de->name, d->d_name, len);
	f->pos += rec;
	return true;
}

/* Fills the reply from @offset; h->lock held. */
static int fill_dir(struct dir_fill *f, struct fs_handle *h, uint64_t offset)
{
	uint64_t last = offset;

	if (!h->dir_at_valid || h->dir_at != offset) {
		if (lseek(h->fd, (off_t)offset, SEEK_SET) < 0)
			return -errno;
		h->dpos = h->dlen = 0;
	}
	h->dir_at_valid = false;
	for (;;) {
		if (h->dpos == h->dlen) {
			ssize_t n = getdents64(h->fd, h->dbuf, FS_HTAB_DIRBUF);

			if (n < 0)
				return f->pos ? 0 : -errno;
			if (n == 0)
				break;
			h->dpos = 0;
			h->dlen = (uint32_t)n;
		}
		const struct dirent64 *d = (const struct dirent64 *)(h->dbuf + h->dpos);

		/* The kernel's records; still, never step past what it gave. */
		if (d->d_reclen == 0 || d->d_reclen > h->dlen - h->dpos) {
			h->dpos = h->dlen = 0;
			return f->pos ? 0 : -EIO;
		}
		if (!emit(f, d))
			break; /* it stays in the handle for the next READDIR */
		last = (uint64_t)d->d_off;
		h->dpos += d->d_reclen;
	}
	h->dir_at = last;
	h->dir_at_valid = true;
	return 0;
}

int fs_op_readdir(struct fs_req *r)
{
	const struct fuse_read_in *in = &r->p.a.read;
	bool plus = r->p.h.opcode == FUSE_READDIRPLUS;
	size_t room = fs_reply_room(r);
	struct dir_fill f = { .s = r->s, .buf = r->sc->reply };
	struct fs_iref parent;
	struct fs_handle *h;
	int err;

	if (in->offset > INT64_MAX)
		return -EINVAL;
	f.size = in->size < room ? in->size : room;
	err = fs_htab_get(&r->s->handles, in->fh, &h);
	if (err)
		return err;
	if (!h->dir) {
		fs_htab_put(&r->s->handles, h);
		return -ENOTDIR;
	}
	if (plus) {
		err = fs_get_node(r, &parent);
		if (err) {
			fs_htab_put(&r->s->handles, h);
			return err;
		}
		f.parent = &parent;
	}
	pthread_mutex_lock(&h->lock);
	err = fill_dir(&f, h, in->offset);
	pthread_mutex_unlock(&h->lock);
	if (plus)
		fs_itab_put(&r->s->inodes, &parent);
	fs_htab_put(&r->s->handles, h);
	if (err)
		return err;
	r->reply_len = f.pos;
	return 0;
}
