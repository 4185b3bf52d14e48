/* FUSE operations on an inode's attributes: GETATTR, SETATTR, READLINK,
 * STATFS, ACCESS and the xattrs. All go through the inode's O_PATH fd
 * with empty paths (AT_EMPTY_PATH), or through a file handle the guest
 * names (FATTR_FH, FUSE_GETATTR_FH); host.c holds the fallbacks for
 * kernels without the fd-based calls. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_internal.h"

#define GUEST_PERM_BITS (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX)
#define NSEC_PER_SEC 1000000000u

static int reply_attr(struct fs_req *r, int fd)
{
	struct fuse_attr_out *o = (struct fuse_attr_out *)r->sc->reply;
	struct stat st;
	int err = fs_stat_fd(fd, &st);

	if (err)
		return err;
	memset(o, 0, sizeof(*o));
	o->attr_valid = fs_timeout(r->s);
	fs_fill_attr(&o->attr, &st);
	r->reply_len = sizeof(*o);
	return 0;
}

int fs_op_getattr(struct fs_req *r)
{
	const struct fuse_getattr_in *in = &r->p.a.getattr;
	struct fs_iref ref;
	int err;

	if (in->getattr_flags & FUSE_GETATTR_FH) {
		struct fs_handle *h;

		err = fs_htab_get(&r->s->handles, in->fh, &h);
		if (err)
			return err;
		err = reply_attr(r, h->fd);
		fs_htab_put(&r->s->handles, h);
		return err;
	}
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	err = reply_attr(r, ref.fd);
	fs_itab_put(&r->s->inodes, &ref);
	return err;
}

static int set_size(struct fuse_server *s, const struct fs_iref *ref, struct fs_handle *h,
		    uint64_t size)
{
	int fd, err = 0;

	if (size > INT64_MAX)
		return -EINVAL;
	if (h)
		return ftruncate(h->fd, (off_t)size) < 0 ? -errno : 0;
	if (S_ISDIR(ref->mode))
		return -EISDIR;
	if (!S_ISREG(ref->mode))
		return -EINVAL;
	/* truncate(2) needs a path; a writable re-open is the fd way. */
	fd = fs_reopen(&s->host, ref->fd, O_WRONLY);
	if (fd < 0)
		return fd;
	if (ftruncate(fd, (off_t)size) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int set_times(const struct fs_iref *ref, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

	if (in->valid & FATTR_ATIME) {
		if (in->valid & FATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (in->atimensec >= NSEC_PER_SEC)
			return -EINVAL;
		else
			ts[0] = (struct timespec){ (time_t)in->atime, in->atimensec };
	}
	if (in->valid & FATTR_MTIME) {
		if (in->valid & FATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (in->mtimensec >= NSEC_PER_SEC)
			return -EINVAL;
		else
			ts[1] = (struct timespec){ (time_t)in->mtime, in->mtimensec };
	}
	return utimensat(ref->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int do_setattr(struct fuse_server *s, const struct fs_iref *ref, struct fs_handle *h,
		      const struct fuse_setattr_in *in)
{
	int err = 0;

	if (in->valid & FATTR_MODE) {
		mode_t mode = in->mode & GUEST_PERM_BITS; /* never set-uid/set-gid */

		if (h)
			err = fchmod(h->fd, mode) < 0 ? -errno : 0;
		else
			err = fs_chmod(&s->host, ref->fd, ref->mode, mode);
		if (err)
			return err;
	}
	if (in->valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = (in->valid & FATTR_UID) ? in->uid : (uid_t)-1;
		gid_t gid = (in->valid & FATTR_GID) ? in->gid : (gid_t)-1;

		if (fchownat(ref->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (in->valid & FATTR_SIZE) {
		err = set_size(s, ref, h, in->size);
		if (err)
			return err;
	}
	if (in->valid & (FATTR_ATIME | FATTR_MTIME))
		return set_times(ref, in);
	return 0;
}

int fs_op_setattr(struct fs_req *r)
{
	const struct fuse_setattr_in *in = &r->p.a.setattr;
	struct fs_handle *h = NULL;
	struct fs_iref ref;
	int err = fs_get_node(r, &ref);

	if (err)
		return err;
	if (in->valid & FATTR_FH) {
		err = fs_htab_get(&r->s->handles, in->fh, &h);
		if (err) {
			fs_itab_put(&r->s->inodes, &ref);
			return err;
		}
	}
	err = do_setattr(r->s, &ref, h, in);
	if (!err)
		err = reply_attr(r, ref.fd);
	if (h)
		fs_htab_put(&r->s->handles, h);
	fs_itab_put(&r->s->inodes, &ref);
	return err;
}

int fs_op_readlink(struct fs_req *r)
{
	size_t room = fs_reply_room(r);
	struct fs_iref ref;
	ssize_t n;
	int err = fs_get_node(r, &ref);

	if (err)
		return err;
	if (room > PATH_MAX)
		room = PATH_MAX;
	if (!S_ISLNK(ref.mode)) {
		fs_itab_put(&r->s->inodes, &ref);
		return -EINVAL; /* as readlink(2) on anything else */
	}
	n = readlinkat(ref.fd, "", (char *)r->sc->reply, room);
	fs_itab_put(&r->s->inodes, &ref);
	if (n < 0)
		return -errno;
	r->reply_len = (size_t)n;
	return 0;
}

int fs_op_statfs(struct fs_req *r)
{
	struct fuse_statfs_out *o = (struct fuse_statfs_out *)r->sc->reply;
	struct fs_iref ref;
	struct statfs sf;
	int err = fs_get_node(r, &ref);

	if (err)
		return err;
	if (fstatfs(ref.fd, &sf) < 0)
		err = -errno;
	fs_itab_put(&r->s->inodes, &ref);
	if (err)
		return err;
	memset(o, 0, sizeof(*o));
	o->st.blocks = sf.f_blocks;
	o->st.bfree = sf.f_bfree;
	o->st.bavail = sf.f_bavail;
	o->st.files = sf.f_files;
	o->st.ffree = sf.f_ffree;
	o->st.bsize = (uint32_t)sf.f_bsize;
	o->st.namelen = (uint32_t)sf.f_namelen;
	o->st.frsize = (uint32_t)sf.f_frsize;
	r->reply_len = sizeof(*o);
	return 0;
}

int fs_op_access(struct fs_req *r)
{
	uint32_t mask = r->p.a.access.mask;
	struct fs_iref ref;
	int err;

	if (mask & ~(uint32_t)(R_OK | W_OK | X_OK))
		return -EINVAL;
	if ((mask & W_OK) && r->s->readonly)
		return -EROFS;
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	err = fs_access(&r->s->host, ref.fd, (int)mask);
	fs_itab_put(&r->s->inodes, &ref);
	return err;
}

/* ---- xattrs ---- */

/* The guest writes only in the user namespace: security.*, trusted.*
 * and system.* decide things on the host (capabilities, ACLs, overlay
 * metadata). */
static bool writable_xattr(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

int fs_op_setxattr(struct fs_req *r)
{
	int flags = (int)r->p.a.setxattr.flags;
	struct fs_iref ref;
	int err;

	if (!writable_xattr(r->p.name))
		return -EPERM;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	err = fs_setxattr(&r->s->host, ref.fd, ref.mode, r->p.name, r->p.value, r->p.value_len,
			  flags);
	fs_itab_put(&r->s->inodes, &ref);
	return err;
}

int fs_op_removexattr(struct fs_req *r)
{
	struct fs_iref ref;
	int err;

	if (!writable_xattr(r->p.name))
		return -EPERM;
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	err = fs_removexattr(&r->s->host, ref.fd, ref.mode, r->p.name);
	fs_itab_put(&r->s->inodes, &ref);
	return err;
}

/* GETXATTR and LISTXATTR: size 0 asks for the size; otherwise the data,
 * ERANGE when it is larger than size (or than the reply's room). */
static int xattr_reply(struct fs_req *r, bool list)
{
	uint32_t want = r->p.a.getxattr.size;
	size_t room = fs_reply_room(r), cap;
	struct fs_iref ref;
	ssize_t n;
	int err;

	if (want == 0 && room < sizeof(struct fuse_getxattr_out))
		return -EINVAL;
	err = fs_get_node(r, &ref);
	if (err)
		return err;
	cap = want < room ? want : room;
	if (cap > FUSE_PARSE_XATTR_SIZE_MAX)
		cap = FUSE_PARSE_XATTR_SIZE_MAX;
	void *buf = want ? r->sc->reply : NULL;

	if (list)
		n = fs_listxattr(&r->s->host, ref.fd, ref.mode, buf, want ? cap : 0);
	else
		n = fs_getxattr(&r->s->host, ref.fd, ref.mode, r->p.name, buf, want ? cap : 0);
	fs_itab_put(&r->s->inodes, &ref);
	if (n < 0)
		return (int)n;
	if (want == 0) {
		struct fuse_getxattr_out *o = (struct fuse_getxattr_out *)r->sc->reply;

		memset(o, 0, sizeof(*o));
		o->size = (uint32_t)n;
		r->reply_len = sizeof(*o);
	} else {
		r->reply_len = (size_t)n;
	}
	return 0;
}

int fs_op_getxattr(struct fs_req *r)
{
	return xattr_reply(r, false);
}

int fs_op_listxattr(struct fs_req *r)
{
	return xattr_reply(r, true);
}
