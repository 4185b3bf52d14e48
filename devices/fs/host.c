/* The FUSE server's host system calls that need care: one-component
 * opens that never follow a link, re-opening an O_PATH fd, the walk that
 * checks a ".." stays inside the share, and the calls whose fd-based form
 * only newer kernels have (chmod, access, link), each with its
 * /proc/self/fd fallback, and the xattr calls, which have none.
 *
 * Why /proc/self/fd at all: Linux has no call that turns an O_PATH fd
 * into one that can be read or written (OPEN, truncate without a
 * handle); before 6.6 (fchmodat2) none that changes a mode through one;
 * before 5.8 (faccessat2) none that checks access through one;
 * linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; and no xattr call
 * takes an O_PATH fd (the *xattrat calls of 6.13 accept AT_EMPTY_PATH but
 * answer EBADF for an O_PATH fd: measured on 6.18).
 *
 * "/proc/self/fd/N" (N our own fd, never guest input) is a magic link to
 * exactly the inode the fd pins, wherever it is now; resolving it lands
 * on that inode and goes no further, even when the inode is itself a
 * symlink (chmod then fails with EOPNOTSUPP, open with ELOOP, and linkat
 * links the symlink: the unit tests check each). Opening for I/O and
 * xattrs use it only for regular files and directories, whose type the
 * server learnt when it looked them up: a FIFO or device is never opened
 * on the host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_internal.h"

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif
#define AT_FLAGS_BOGUS 0x40000000 /* no AT_* flag: EINVAL where the call exists */

static bool call_exists(long r)
{
	/* The probes pass a flag no kernel accepts: EINVAL means the call
	 * is there; ENOSYS (or a filter's EPERM) that it is not. */
	return r < 0 && errno == EINVAL;
}

int fs_host_probe(struct fs_host *h, int root_fd, unsigned disable)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH };
	long r;

	h->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (h->proc_fd < 0)
		return -errno;
	r = syscall(SYS_openat2, root_fd, ".", &how, sizeof(how));
	h->openat2 = r >= 0 && !(disable & FUSE_HOST_NO_OPENAT2);
	if (r >= 0)
		close((int)r);
	h->fchmodat2 = call_exists(syscall(__NR_fchmodat2, root_fd, "", 0, AT_FLAGS_BOGUS)) &&
		       !(disable & FUSE_HOST_NO_FCHMODAT2);
	h->faccessat2 = call_exists(syscall(SYS_faccessat2, root_fd, "", 0, AT_FLAGS_BOGUS)) &&
			!(disable & FUSE_HOST_NO_FACCESSAT2);
	h->link_empty = !(disable & FUSE_HOST_NO_LINK_EMPTY);
	return 0;
}

int fs_stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

int fs_open_component_flags(const struct fs_host *h, int dirfd, const char *name, int flags,
			    mode_t mode)
{
	long fd;

	flags |= O_NOFOLLOW | O_CLOEXEC;
	if (!h->openat2) {
		fd = openat(dirfd, name, flags, mode);
		return fd < 0 ? -errno : (int)fd;
	}
	struct open_how how = {
		.flags = (uint64_t)flags,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	/* EAGAIN: a concurrent rename made the kernel unsure the walk stayed
	 * beneath; it asks to retry. */
	for (int tries = 0; tries < 8; tries++) {
		fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd < 0 ? -errno : (int)fd;
}

int fs_open_component(const struct fs_host *h, int dirfd, const char *name)
{
	return fs_open_component_flags(h, dirfd, name, O_PATH, 0);
}

static void fd_name(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "%d", fd);
}

int fs_reopen(const struct fs_host *h, int fd, int flags)
{
	char n[16];
	int r;

	fd_name(n, sizeof(n), fd);
	/* No O_NOFOLLOW: the magic link itself must be followed; it leads
	 * to the inode @fd pins. O_NONBLOCK: never wait in open. */
	r = openat(h->proc_fd, n, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	return r < 0 ? -errno : r;
}

static bool same_inode(const struct stat *st, uint64_t dev, uint64_t ino)
{
	return (uint64_t)st->st_dev == dev && (uint64_t)st->st_ino == ino;
}

int fs_open_parent(const struct fs_host *h, int fd, uint64_t root_dev, uint64_t root_ino)
{
	int parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int probe = parent, r = -EACCES;
	struct stat st, up_st;

	if (parent < 0)
		return -errno;
	/* Inside when the share's root is the parent or one of its
	 * ancestors; outside when the walk reaches the top ("/" is its own
	 * parent) first. */
	for (int depth = 0; depth < 4096; depth++) {
		if (fs_stat_fd(probe, &st) < 0)
			break;
		if (same_inode(&st, root_dev, root_ino)) {
			r = 0;
			break;
		}
		int up = openat(probe, "..", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (up < 0)
			break;
		if (fs_stat_fd(up, &up_st) < 0 ||
		    same_inode(&up_st, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) {
			close(up);
			break;
		}
		if (probe != parent)
			close(probe);
		probe = up;
	}
	if (probe != parent)
		close(probe);
	if (r < 0) {
		close(parent);
		return r;
	}
	return parent;
}

int fs_chmod(const struct fs_host *h, int fd, mode_t type, mode_t mode)
{
	char n[16];
	long r;

	if (S_ISLNK(type))
		return -EOPNOTSUPP; /* Linux has no symlink modes */
	if (h->fchmodat2) {
		r = syscall(__NR_fchmodat2, fd, "", mode, AT_EMPTY_PATH);
	} else {
		fd_name(n, sizeof(n), fd);
		r = fchmodat(h->proc_fd, n, mode, 0);
	}
	return r < 0 ? -errno : 0;
}

int fs_access(const struct fs_host *h, int fd, int mask)
{
	char n[16];
	long r;

	if (h->faccessat2) {
		r = syscall(SYS_faccessat2, fd, "", mask, AT_EMPTY_PATH | AT_EACCESS);
	} else {
		fd_name(n, sizeof(n), fd);
		r = syscall(SYS_faccessat, h->proc_fd, n, mask);
	}
	return r < 0 ? -errno : 0;
}

int fs_link(const struct fs_host *h, int fd, int newdir, const char *name)
{
	char n[16];

	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH: without it the kernel
	 * answers ENOENT, and the /proc link (which it allows) is the way. */
	if (h->link_empty) {
		if (linkat(fd, "", newdir, name, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != ENOENT)
			return -errno;
	}
	fd_name(n, sizeof(n), fd);
	return linkat(h->proc_fd, n, newdir, name, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
}

/* ---- xattrs ----
 * Always through /proc/self/fd/N: no fd-based xattr call takes an O_PATH
 * fd. */

/* The /proc path of @fd for the path-based xattr calls, only for the
 * inode types it can stand for (see the top of this file). */
static bool proc_path(char *buf, size_t n, int fd, mode_t type)
{
	if (!S_ISREG(type) && !S_ISDIR(type))
		return false;
	snprintf(buf, n, "/proc/self/fd/%d", fd);
	return true;
}

ssize_t fs_getxattr(const struct fs_host *h, int fd, mode_t type, const char *name, void *buf,
		    size_t size)
{
	char path[40];
	long r;

	if (!proc_path(path, sizeof(path), fd, type))
		return -ENODATA; /* no way to reach a symlink's or FIFO's xattrs */
	r = getxattr(path, name, buf, size);
	return r < 0 ? -errno : r;
}

int fs_setxattr(const struct fs_host *h, int fd, mode_t type, const char *name,
		const void *value, size_t size, int flags)
{
	char path[40];
	long r;

	if (!proc_path(path, sizeof(path), fd, type))
		return -EPERM; /* as Linux answers for user.* on these */
	r = setxattr(path, name, value, size, flags);
	return r < 0 ? -errno : 0;
}

ssize_t fs_listxattr(const struct fs_host *h, int fd, mode_t type, void *buf, size_t size)
{
	char path[40];
	long r;

	if (!proc_path(path, sizeof(path), fd, type))
		return 0;
	r = listxattr(path, buf, size);
	return r < 0 ? -errno : r;
}

int fs_removexattr(const struct fs_host *h, int fd, mode_t type, const char *name)
{
	char path[40];
	long r;

	if (!proc_path(path, sizeof(path), fd, type))
		return -EPERM;
	r = removexattr(path, name);
	return r < 0 ? -errno : 0;
}

void fs_fill_attr(struct fuse_attr *a, const struct stat *st)
{
	unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);

	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	/* The kernel's new_encode_dev: what the guest's new_decode_dev undoes. */
	a->rdev = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
	a->blksize = (uint32_t)st->st_blksize;
}
