/* FUSE operations on directory entries: LOOKUP, FORGET, BATCH_FORGET,
 * MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR, RENAME, RENAME2.
 *
 * Every name here is one component the parser checked (no '/', no NUL,
 * 1..255 bytes), used relative to the parent's O_PATH fd; "." and ".."
 * mean something only to LOOKUP (the guest's VFS resolves them itself, so
 * any other operation on them is refused with EINVAL). Calls that create
 * an entry answer with a fresh lookup of it, which counts for the guest
 * like a LOOKUP. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_internal.h"

/* The permission bits the guest may set: no set-uid, no set-gid. */
#define GUEST_PERM_BITS (S_IRWXU | S_IRWXG | S_IRWXO | S_ISVTX)

static void fill_entry(const struct fuse_server *s, struct fuse_entry_out *e, uint64_t nodeid,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nodeid;
	e->entry_valid = e->attr_valid = fs_timeout(s);
	fs_fill_attr(&e->attr, st);
}

static void log_table_full(struct fuse_server *s)
{
	fs_log_guest(s, "inode table full (%u inodes): lookups fail with ENFILE until the "
		     "guest forgets some (the limit follows RLIMIT_NOFILE)", s->inodes.cap);
}

int fs_do_lookup(struct fuse_server *s, const struct fs_iref *parent, const char *name,
		 enum fuse_dot dot, struct fuse_entry_out *e)
{
	struct stat st;
	uint64_t nodeid;
	int fd, r;

	if (!S_ISDIR(parent->mode))
		return -ENOTDIR;
	if (dot == FUSE_NAME_DOT || (dot == FUSE_NAME_DOTDOT && parent->nodeid == FUSE_ROOT_ID)) {
		/* The parent itself; ".." of the root stays at the root. */
		r = fs_stat_fd(parent->fd, &st);
		if (r < 0)
			return r;
		fs_itab_ref_lookup(&s->inodes, parent);
		fill_entry(s, e, parent->nodeid, &st);
		return 0;
	}
	if (dot == FUSE_NAME_DOTDOT)
		fd = fs_open_parent(&s->host, parent->fd, s->root_dev, s->root_ino);
	else
		fd = fs_open_component(&s->host, parent->fd, name);
	if (fd < 0)
		return fd;
	r = fs_stat_fd(fd, &st);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = fs_itab_add_lookup(&s->inodes, fd, &st, &nodeid);
	if (r == -ENFILE)
		log_table_full(s);
	if (r < 0)
		return r;
	fill_entry(s, e, nodeid, &st);
	return 0;
}

int fs_op_lookup(struct fs_req *r)
{
	struct fs_iref parent;
	int err = fs_get_node(r, &parent);

	if (err)
		return err;
	err = fs_do_lookup(r->s, &parent, r->p.name, r->p.dot,
			   (struct fuse_entry_out *)r->sc->reply);
	fs_itab_put(&r->s->inodes, &parent);
	if (err == -ENOENT && fs_timeout(r->s) > 0) {
		/* A negative entry (node 0) with the cache timeout, as
		 * virtiofsd answers: the guest then keeps the miss, so a name
		 * looked up again and again before it exists (tar and make
		 * probe each file they create, shells search PATH) costs one
		 * request, not one per look. A bare ENOENT is never cached. */
		struct fuse_entry_out *e = (struct fuse_entry_out *)r->sc->reply;

		memset(e, 0, sizeof(*e));
		e->entry_valid = fs_timeout(r->s);
		err = 0;
	}
	if (!err)
		r->reply_len = sizeof(struct fuse_entry_out);
	return err;
}

int fs_op_forget(struct fs_req *r)
{
	fs_itab_forget(&r->s->inodes, r->p.h.nodeid, r->p.a.forget.nlookup);
	return 0;
}

int fs_op_batch_forget(struct fs_req *r)
{
	struct fuse_forget_one batch[64];
	size_t off = r->p.data_off, left = r->p.data_len;

	/* The entries stay in guest memory; each chunk is copied once. */
	while (left) {
		size_t n = left < sizeof(batch) ? left : sizeof(batch);

		if (fuse_iov_read(r->in, r->nin, off, batch, n) != n)
			break;
		for (size_t i = 0; i < n / sizeof(batch[0]); i++)
			fs_itab_forget(&r->s->inodes, batch[i].nodeid, batch[i].nlookup);
		off += n;
		left -= n;
	}
	return 0;
}

/* The parent of an entry-creating or -removing request, with its name
 * checked to be a plain component. */
static int get_parent(struct fs_req *r, struct fs_iref *parent)
{
	if (r->p.dot != FUSE_NAME_PLAIN)
		return -EINVAL;
	return fs_get_node(r, parent);
}

/* After creating r->p.name under @parent: its entry as the reply. */
static int reply_entry(struct fs_req *r, const struct fs_iref *parent)
{
	int err = fs_do_lookup(r->s, parent, r->p.name, FUSE_NAME_PLAIN,
			       (struct fuse_entry_out *)r->sc->reply);

	if (!err)
		r->reply_len = sizeof(struct fuse_entry_out);
	return err;
}

int fs_op_mkdir(struct fs_req *r)
{
	struct fs_iref parent;
	int err = get_parent(r, &parent);

	if (err)
		return err;
	/* The guest kernel applied its umask already (no FUSE_DONT_MASK). */
	if (mkdirat(parent.fd, r->p.name, r->p.a.mkdir.mode & GUEST_PERM_BITS) < 0)
		err = -errno;
	else
		err = reply_entry(r, &parent);
	fs_itab_put(&r->s->inodes, &parent);
	return err;
}

int fs_op_mknod(struct fs_req *r)
{
	mode_t mode = r->p.a.mknod.mode, type = mode & S_IFMT;
	struct fs_iref parent;
	int err;

	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM; /* no device nodes on the host for the guest */
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	err = get_parent(r, &parent);
	if (err)
		return err;
	if (mknodat(parent.fd, r->p.name, type | (mode & GUEST_PERM_BITS), 0) < 0)
		err = -errno;
	else
		err = reply_entry(r, &parent);
	fs_itab_put(&r->s->inodes, &parent);
	return err;
}

int fs_op_symlink(struct fs_req *r)
{
	struct fs_iref parent;
	int err = get_parent(r, &parent);

	if (err)
		return err;
	/* The target is stored, never resolved by the host. */
	if (symlinkat(r->p.name2, parent.fd, r->p.name) < 0)
		err = -errno;
	else
		err = reply_entry(r, &parent);
	fs_itab_put(&r->s->inodes, &parent);
	return err;
}

int fs_op_link(struct fs_req *r)
{
	struct fs_iref parent, old;
	int err = get_parent(r, &parent);

	if (err)
		return err;
	err = fs_itab_get(&r->s->inodes, r->p.a.link.oldnodeid, &old);
	if (err) {
		fs_itab_put(&r->s->inodes, &parent);
		return err;
	}
	if (S_ISDIR(old.mode))
		err = -EPERM;
	else
		err = fs_link(&r->s->host, old.fd, parent.fd, r->p.name);
	if (!err)
		err = reply_entry(r, &parent);
	fs_itab_put(&r->s->inodes, &old);
	fs_itab_put(&r->s->inodes, &parent);
	return err;
}

static int remove_entry(struct fs_req *r, int flags)
{
	struct fs_iref parent;
	int err = get_parent(r, &parent);

	if (err)
		return err;
	/* The inode (if the guest knows it) stays in the table until the
	 * guest forgets it: an open-unlink-fstat keeps working. */
	if (unlinkat(parent.fd, r->p.name, flags) < 0)
		err = -errno;
	fs_itab_put(&r->s->inodes, &parent);
	return err;
}

int fs_op_unlink(struct fs_req *r)
{
	return remove_entry(r, 0);
}

int fs_op_rmdir(struct fs_req *r)
{
	return remove_entry(r, AT_REMOVEDIR);
}

int fs_op_rename(struct fs_req *r)
{
	bool two = r->p.h.opcode == FUSE_RENAME2;
	uint64_t newdir = two ? r->p.a.rename2.newdir : r->p.a.rename.newdir;
	unsigned flags = two ? r->p.a.rename2.flags : 0;
	struct fs_iref from, to;
	int err;

	/* RENAME_WHITEOUT would leave a character device behind. */
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (r->p.dot2 != FUSE_NAME_PLAIN)
		return -EINVAL;
	err = get_parent(r, &from);
	if (err)
		return err;
	err = fs_itab_get(&r->s->inodes, newdir, &to);
	if (err) {
		fs_itab_put(&r->s->inodes, &from);
		return err;
	}
	/* The system call itself: glibc's renameat2 turns flags 0 into renameat. */
	if (syscall(SYS_renameat2, from.fd, r->p.name, to.fd, r->p.name2, flags) < 0)
		err = -errno;
	fs_itab_put(&r->s->inodes, &to);
	fs_itab_put(&r->s->inodes, &from);
	return err;
}
