/* The FUSE server's operations against a real temporary folder: INIT
 * negotiation, lookups, files, directories, links, attributes, xattrs,
 * the open-unlink-fstat idiom, DESTROY and reset; each time checking the
 * host folder saw the result. Requests are also sent cut into small
 * iovecs, and with every newer-kernel call disabled (the /proc/self/fd
 * fallbacks). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../check_main.h"
#include "fuse_client.h"
#include "kvmini/log.h"

#define ALL_FALLBACKS (FUSE_HOST_NO_OPENAT2 | FUSE_HOST_NO_FCHMODAT2 | \
		       FUSE_HOST_NO_FACCESSAT2 | FUSE_HOST_NO_LINK_EMPTY)

static char top[64], share[96];
static struct fc c;
static unsigned fds_before;

static void host_path(char *buf, size_t n, const char *rel)
{
	snprintf(buf, n, "%s/%s", share, rel);
}

static void host_write(const char *rel, const char *data)
{
	char p[256];
	int fd;

	host_path(p, sizeof(p), rel);
	fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static void host_stat(const char *rel, struct stat *st)
{
	char p[256];

	host_path(p, sizeof(p), rel);
	ck_assert_int_eq(lstat(p, st), 0);
}

static bool host_exists(const char *rel)
{
	char p[256];
	struct stat st;

	host_path(p, sizeof(p), rel);
	return lstat(p, &st) == 0;
}

static void setup_with(unsigned disable)
{
	struct fuse_server_cfg cfg = { .host_disable = disable };

	umask(0); /* as the server's worker threads have it */
	fc_tmpdir(top, sizeof(top), "fsops");
	snprintf(share, sizeof(share), "%s/share", top);
	ck_assert_int_eq(mkdir(share, 0755), 0);
	fds_before = fc_count_fds();
	fc_start(&c, share, &cfg);
}

/* Each test starts with this (loop tests: _i 0 uses the host's newest
 * calls, 1 every fallback). */
#define BEGIN() setup_with(_i ? ALL_FALLBACKS : 0)

static void teardown(void)
{
	if (!c.s)
		return;
	fc_stop(&c);
	ck_assert_uint_eq(fc_count_fds(), fds_before);
	fc_rmrf(top);
}

/* A miss is answered as a negative entry the guest may keep for the
 * cache timeout (node 0), except with cache=never: a bare ENOENT. */
START_TEST(negative_lookups)
{
	struct fuse_server_cfg never = { .cache = FUSE_CACHE_NEVER };
	struct fuse_server_stats st;
	struct fuse_entry_out e;

	BEGIN();
	memset(&e, 0xa5, sizeof(e));
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "later", &e), -ENOENT);
	ck_assert_uint_eq(e.nodeid, 0);
	ck_assert_uint_eq(e.entry_valid, 1);
	ck_assert_uint_eq(e.attr_valid, 0);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, 1); /* the root only */
	/* The server keeps nothing of a miss: the name, once made, is found. */
	host_write("later", "x");
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "later", &e), 0);
	ck_assert_uint_ne(e.nodeid, 0);
	ck_assert_uint_eq(e.attr.size, 1);
	fc_forget(&c, e.nodeid, 1);

	fc_stop(&c);
	fc_start(&c, share, &never);
	memset(&e, 0xa5, sizeof(e));
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "nope", &e), -ENOENT);
	ck_assert_uint_eq(e.nodeid, 0xa5a5a5a5a5a5a5a5ull); /* an error, no entry */
}
END_TEST

START_TEST(init_negotiation)
{
	struct fuse_init_in in = { .major = 7, .minor = 36, .flags = 0xffffffffu };
	struct fuse_init_out *o = fc_payload(&c);
	struct fuse_attr a;

	BEGIN();
	/* fc_start did INIT already: a second one on a live connection fails. */
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, sizeof(*o)), -EPROTO);
	ck_assert_int_eq(fc_call(&c, FUSE_DESTROY, 0, NULL, 0, NULL, 0, 0), 0);
	/* Nothing but INIT before INIT. */
	ck_assert_int_eq(fc_getattr(&c, FUSE_ROOT_ID, &a), -EIO);
	in.minor = 30;
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, sizeof(*o)), -EPROTO);
	in.major = 8;
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, sizeof(*o)), 0);
	ck_assert_uint_eq(o->major, 7);
	ck_assert_int_eq(fc_getattr(&c, FUSE_ROOT_ID, &a), -EIO);
	/* Linux 6.1 speaks 7.37 with every flag it knows. */
	in.major = 7;
	in.minor = 37;
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, sizeof(*o)), 0);
	ck_assert_uint_eq(c.reply_len, sizeof(*o));
	ck_assert_uint_eq(o->major, 7);
	ck_assert_uint_eq(o->minor, 37);
	ck_assert_uint_eq(o->max_write, 1u << 20);
	ck_assert_uint_eq(o->max_pages, 256);
	ck_assert(o->flags & FUSE_DO_READDIRPLUS);
	ck_assert(o->flags & FUSE_ATOMIC_O_TRUNC);
	ck_assert(!(o->flags & (FUSE_WRITEBACK_CACHE | FUSE_POSIX_LOCKS | FUSE_EXPORT_SUPPORT |
				FUSE_DONT_MASK | FUSE_POSIX_ACL)));
	ck_assert_int_eq(fc_getattr(&c, FUSE_ROOT_ID, &a), 0);
	ck_assert(S_ISDIR(a.mode));
	/* The 16-byte INIT of kernels before 7.36 and flags it did not offer. */
	ck_assert_int_eq(fc_call(&c, FUSE_DESTROY, 0, NULL, 0, NULL, 0, 0), 0);
	in.minor = 31;
	in.flags = FUSE_ASYNC_READ;
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, 16, NULL, 0, sizeof(*o)), 0);
	ck_assert_uint_eq(o->minor, 31);
	ck_assert_uint_eq(o->flags, FUSE_ASYNC_READ);
}
END_TEST

START_TEST(lookup_and_getattr)
{
	struct fuse_entry_out e, e2;
	struct fuse_attr a;
	struct stat st;

	BEGIN();
	host_write("f", "hello");
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	host_stat("f", &st);
	ck_assert_uint_eq(e.attr.ino, st.st_ino);
	ck_assert_uint_eq(e.attr.size, 5);
	ck_assert_uint_eq(e.attr.mode, st.st_mode);
	ck_assert_uint_eq(e.attr.uid, st.st_uid);
	ck_assert_uint_eq(e.attr_valid, 1);
	ck_assert_int_eq(fc_getattr(&c, e.nodeid, &a), 0);
	ck_assert_uint_eq(a.mtime, (uint64_t)st.st_mtim.tv_sec);
	ck_assert_uint_eq(a.mtimensec, (uint32_t)st.st_mtim.tv_nsec);
	/* One inode, one nodeid. */
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e2), 0);
	ck_assert_uint_eq(e2.nodeid, e.nodeid);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "nope", &e2), -ENOENT);
	ck_assert_int_eq(fc_lookup(&c, e.nodeid, "x", &e2), -ENOTDIR);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, ".", &e2), 0);
	ck_assert_uint_eq(e2.nodeid, FUSE_ROOT_ID);
	ck_assert_int_eq(fc_getattr(&c, 12345, &a), -EBADF);
	/* Two lookups: two forgets to free it. */
	fc_forget(&c, e.nodeid, 1);
	ck_assert_int_eq(fc_getattr(&c, e.nodeid, &a), 0);
	fc_forget(&c, e.nodeid, 1);
	ck_assert_int_eq(fc_getattr(&c, e.nodeid, &a), -EBADF);
}
END_TEST

START_TEST(create_write_read)
{
	static char buf[20000], back[20000];
	struct fuse_entry_out e;
	uint64_t fh, fh2;
	struct stat st;
	char p[256];
	int fd;

	BEGIN();
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	c.split = 777; /* every request and reply in many pieces */
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "new", O_RDWR, S_IFREG | 0640, &e, &fh), 0);
	ck_assert(S_ISREG(e.attr.mode));
	ck_assert_int_eq(fc_write(&c, e.nodeid, fh, 0, buf, sizeof(buf)), (int)sizeof(buf));
	ck_assert_int_eq(fc_read(&c, e.nodeid, fh, 100, back, 5000), 5000);
	ck_assert_mem_eq(back, buf + 100, 5000);
	/* Reads stop at the end of the file. */
	ck_assert_int_eq(fc_read(&c, e.nodeid, fh, sizeof(buf) - 10, back, 100), 10);
	ck_assert_int_eq(fc_read(&c, e.nodeid, fh, 1u << 30, back, 100), 0);
	c.split = 0;
	/* The host sees it all, owned by us, mode as asked. */
	host_stat("new", &st);
	ck_assert_uint_eq(st.st_size, sizeof(buf));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_uint_eq(st.st_uid, geteuid());
	host_path(p, sizeof(p), "new");
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(read(fd, back, sizeof(back)), (ssize_t)sizeof(buf));
	close(fd);
	ck_assert_mem_eq(back, buf, sizeof(buf));
	/* O_EXCL on an existing name; without it CREATE opens it (O_TRUNC). */
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "new", O_RDWR | O_EXCL, 0644, &e, &fh2),
			 -EEXIST);
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "new", O_WRONLY | O_TRUNC, 0644, &e, &fh2),
			 0);
	ck_assert_uint_eq(e.attr.size, sizeof(buf)); /* attrs from before the truncation */
	host_stat("new", &st);
	ck_assert_uint_eq(st.st_size, 0);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh2), 0);
	/* A released handle is gone. */
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_read(&c, e.nodeid, fh, 0, back, 10), -EBADF);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), -EBADF);
	/* OPEN: regular files only, write modes as asked. */
	ck_assert_int_eq(fc_open(&c, e.nodeid, O_RDONLY, &fh), 0);
	ck_assert_int_eq(fc_write(&c, e.nodeid, fh, 0, "x", 1), -EBADF);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_open(&c, FUSE_ROOT_ID, O_RDONLY, &fh), -EISDIR);
	ck_assert_int_eq(fc_open(&c, e.nodeid, O_ACCMODE, &fh), -EINVAL);
}
END_TEST

START_TEST(directories)
{
	struct fuse_entry_out d, f;
	char names[8192], name[64];
	uint64_t fh, dfh, off = 0;
	int n, total = 0, plus_total = 0;

	BEGIN();
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "d", 0750, &d), 0);
	ck_assert(S_ISDIR(d.attr.mode));
	ck_assert_uint_eq(d.attr.mode & 07777, 0750);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "file-with-a-longish-name-%03d", i);
		ck_assert_int_eq(fc_create(&c, d.nodeid, name, O_WRONLY, 0600, &f, &fh), 0);
		ck_assert_int_eq(fc_release(&c, f.nodeid, fh), 0);
		fc_forget(&c, f.nodeid, 1);
	}
	ck_assert_int_eq(fc_opendir(&c, d.nodeid, &dfh), 0);
	/* Several READDIRs, each from where the last one stopped. */
	while ((n = fc_readdir(&c, d.nodeid, dfh, false, off, names, sizeof(names), &off)) > 0)
		total += n;
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(total, 102); /* with "." and ".." */
	/* READDIRPLUS: entries with attributes and one lookup each. */
	struct fuse_server_stats st;

	fuse_server_stats(c.s, &st);
	unsigned before = st.inodes;

	off = 0;
	while ((n = fc_readdir(&c, d.nodeid, dfh, true, off, names, sizeof(names), &off)) > 0)
		plus_total += n;
	ck_assert_int_eq(plus_total, 102);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, before + 100);
	ck_assert_int_eq(fc_release(&c, d.nodeid, dfh), 0);
	/* OPENDIR of a file, READDIR on a file handle. */
	ck_assert_int_eq(fc_lookup(&c, d.nodeid, "file-with-a-longish-name-007", &f), 0);
	ck_assert_int_eq(fc_opendir(&c, f.nodeid, &fh), -ENOTDIR);
	ck_assert_int_eq(fc_open(&c, f.nodeid, O_RDONLY, &fh), 0);
	ck_assert_int_eq(fc_readdir(&c, d.nodeid, fh, false, 0, names, sizeof(names), &off),
			 -ENOTDIR);
	ck_assert_int_eq(fc_rmdir(&c, FUSE_ROOT_ID, "d"), -ENOTEMPTY);
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "e", 0755, &d), 0);
	ck_assert_int_eq(fc_rmdir(&c, FUSE_ROOT_ID, "e"), 0);
	ck_assert(!host_exists("e"));
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "..", 0755, &d), -EINVAL);
}
END_TEST

START_TEST(names_links_renames)
{
	struct fuse_entry_out a, l, s;
	struct stat st;
	char target[64];

	BEGIN();
	host_write("a", "A");
	host_write("b", "B");
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "a", &a), 0);
	/* LINK: the same inode, two names. */
	ck_assert_int_eq(fc_link(&c, a.nodeid, FUSE_ROOT_ID, "a2", &l), 0);
	ck_assert_uint_eq(l.nodeid, a.nodeid);
	ck_assert_uint_eq(l.attr.nlink, 2);
	/* SYMLINK and READLINK: the target is stored as given. */
	ck_assert_int_eq(fc_symlink(&c, FUSE_ROOT_ID, "s", "../../etc/passwd", &s), 0);
	ck_assert(S_ISLNK(s.attr.mode));
	ck_assert_int_eq(fc_readlink(&c, s.nodeid, target, sizeof(target)), 0);
	ck_assert_str_eq(target, "../../etc/passwd");
	ck_assert_int_eq(fc_readlink(&c, a.nodeid, target, sizeof(target)), -EINVAL);
	/* RENAME, RENAME2's NOREPLACE and EXCHANGE; no WHITEOUT. */
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "a2", FUSE_ROOT_ID, "a3", 0), 0);
	ck_assert(!host_exists("a2") && host_exists("a3"));
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "a3", FUSE_ROOT_ID, "b", RENAME_NOREPLACE),
			 -EEXIST);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "a3", FUSE_ROOT_ID, "b", RENAME_EXCHANGE), 0);
	host_stat("b", &st);
	ck_assert_uint_eq(st.st_ino, a.attr.ino);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "b", FUSE_ROOT_ID, "w", RENAME_WHITEOUT),
			 -EINVAL);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "b", FUSE_ROOT_ID, "..", 0), -EINVAL);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "b", 999, "x", 0), -EBADF);
	/* UNLINK. */
	ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "s"), 0);
	ck_assert(!host_exists("s"));
	ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "s"), -ENOENT);
	ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "."), -EINVAL);
	/* MKNOD: FIFOs and sockets yes, device nodes no. */
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "fifo", S_IFIFO | 0644, &l), 0);
	host_stat("fifo", &st);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "chr", S_IFCHR | 0666, &l), -EPERM);
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "blk", S_IFBLK | 0666, &l), -EPERM);
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "dir", S_IFDIR | 0755, &l), -EINVAL);
	ck_assert(!host_exists("chr") && !host_exists("blk") && !host_exists("dir"));
	/* A FIFO is not opened on the host. */
	uint64_t fh;

	ck_assert_int_eq(fc_open(&c, l.nodeid, O_RDONLY, &fh), -ENXIO);
}
END_TEST

START_TEST(attributes)
{
	struct fuse_setattr_in in = { 0 };
	struct fuse_entry_out e;
	struct fuse_attr a;
	struct stat st;
	uint64_t fh;

	BEGIN();
	host_write("f", "0123456789");
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	/* chmod: set-uid/set-gid never reach the host. */
	in.valid = FATTR_MODE;
	in.mode = S_IFREG | 06755;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), 0);
	ck_assert_uint_eq(a.mode & 07777, 0755);
	host_stat("f", &st);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);
	/* truncate without a handle (re-open) and with one. */
	in.valid = FATTR_SIZE;
	in.size = 4;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), 0);
	ck_assert_uint_eq(a.size, 4);
	ck_assert_int_eq(fc_open(&c, e.nodeid, O_RDWR, &fh), 0);
	in.valid = FATTR_SIZE | FATTR_FH;
	in.fh = fh;
	in.size = 2;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), 0);
	host_stat("f", &st);
	ck_assert_uint_eq(st.st_size, 2);
	in.size = (uint64_t)INT64_MAX + 1;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), -EINVAL);
	/* times, and nanoseconds out of range. */
	in.valid = FATTR_ATIME | FATTR_MTIME;
	in.atime = 1000000;
	in.mtime = 2000000;
	in.mtimensec = 5;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), 0);
	host_stat("f", &st);
	ck_assert_uint_eq(st.st_mtim.tv_sec, 2000000);
	ck_assert_uint_eq(st.st_mtim.tv_nsec, 5);
	ck_assert_uint_eq(st.st_atim.tv_sec, 1000000);
	in.mtimensec = 1000000000;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), -EINVAL);
	/* chown to ourselves works; the guest sees host ids. */
	in.valid = FATTR_UID | FATTR_GID;
	in.uid = getuid();
	in.gid = getgid();
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), 0);
	ck_assert_uint_eq(a.uid, getuid());
	/* A directory cannot be truncated; a bad handle is refused. */
	in.valid = FATTR_SIZE;
	in.size = 0;
	ck_assert_int_eq(fc_setattr(&c, FUSE_ROOT_ID, &in, &a), -EISDIR);
	in.valid = FATTR_MODE | FATTR_FH;
	in.fh = 77;
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &in, &a), -EBADF);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
}
END_TEST

START_TEST(xattrs)
{
	struct fuse_entry_out e;
	char v[128];
	int n;

	BEGIN();
	host_write("f", "x");
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	ck_assert_int_eq(fc_setxattr(&c, e.nodeid, "user.color", "blue", 4, 0), 0);
	ck_assert_int_eq(fc_getxattr(&c, e.nodeid, "user.color", NULL, 0), 4);
	ck_assert_int_eq(fc_getxattr(&c, e.nodeid, "user.color", v, sizeof(v)), 4);
	ck_assert_mem_eq(v, "blue", 4);
	ck_assert_int_eq(fc_getxattr(&c, e.nodeid, "user.color", v, 2), -ERANGE);
	ck_assert_int_eq(fc_setxattr(&c, e.nodeid, "user.color", "red", 3, XATTR_CREATE),
			 -EEXIST);
	ck_assert_int_eq(fc_setxattr(&c, e.nodeid, "user.color", "red", 3, 0xff), -EINVAL);
	/* LISTXATTR (same shape as GETXATTR without a name). */
	struct fuse_getxattr_in li = { .size = sizeof(v) };

	ck_assert_int_eq(fc_call(&c, FUSE_LISTXATTR, e.nodeid, &li, sizeof(li), NULL, 0,
				 sizeof(v)), 0);
	ck_assert_uint_ge(c.reply_len, 11);
	ck_assert(memmem(fc_payload(&c), c.reply_len, "user.color", 11) != NULL);
	ck_assert_int_eq(fc_call(&c, FUSE_REMOVEXATTR, e.nodeid, NULL, 0, "user.color", 11, 0), 0);
	ck_assert_int_eq(fc_getxattr(&c, e.nodeid, "user.color", v, sizeof(v)), -ENODATA);
	/* Only the user namespace is writable. */
	ck_assert_int_eq(fc_setxattr(&c, e.nodeid, "trusted.x", "1", 1, 0), -EPERM);
	ck_assert_int_eq(fc_setxattr(&c, e.nodeid, "security.capability", "1", 1, 0), -EPERM);
	ck_assert_int_eq(fc_call(&c, FUSE_REMOVEXATTR, e.nodeid, NULL, 0, "system.x", 9, 0),
			 -EPERM);
	/* On a directory too. */
	ck_assert_int_eq(fc_setxattr(&c, FUSE_ROOT_ID, "user.d", "1", 1, 0), 0);
	n = fc_getxattr(&c, FUSE_ROOT_ID, "user.d", v, sizeof(v));
	ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(misc_ops)
{
	struct fuse_entry_out e;
	struct fuse_fallocate_in fa = { 0 };
	struct fuse_lseek_in ls = { 0 };
	struct fuse_fsync_in fs = { 0 };
	struct fuse_flush_in fl = { 0 };
	struct fuse_access_in ac = { .mask = R_OK };
	struct stat st;
	uint64_t fh;

	BEGIN();
	ck_assert_int_eq(fc_call(&c, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, NULL, 0,
				 sizeof(struct fuse_statfs_out)), 0);
	ck_assert_uint_gt(((struct fuse_statfs_out *)fc_payload(&c))->st.bsize, 0);
	ck_assert_int_eq(fc_call(&c, FUSE_ACCESS, FUSE_ROOT_ID, &ac, sizeof(ac), NULL, 0, 0), 0);
	ac.mask = 0x100;
	ck_assert_int_eq(fc_call(&c, FUSE_ACCESS, FUSE_ROOT_ID, &ac, sizeof(ac), NULL, 0, 0),
			 -EINVAL);
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "f", O_RDWR, 0644, &e, &fh), 0);
	fa.fh = fh;
	fa.length = 1 << 20;
	ck_assert_int_eq(fc_call(&c, FUSE_FALLOCATE, e.nodeid, &fa, sizeof(fa), NULL, 0, 0), 0);
	host_stat("f", &st);
	ck_assert_uint_eq(st.st_size, 1 << 20);
	ck_assert_int_eq(fc_write(&c, e.nodeid, fh, 8192, "data", 4), 4);
	fa.mode = 0x80; /* not a mode the server passes on */
	ck_assert_int_eq(fc_call(&c, FUSE_FALLOCATE, e.nodeid, &fa, sizeof(fa), NULL, 0, 0),
			 -EOPNOTSUPP);
	ls.fh = fh;
	ls.whence = SEEK_DATA;
	ck_assert_int_eq(fc_call(&c, FUSE_LSEEK, e.nodeid, &ls, sizeof(ls), NULL, 0,
				 sizeof(struct fuse_lseek_out)), 0);
	ck_assert_uint_le(((struct fuse_lseek_out *)fc_payload(&c))->offset, 8192);
	ls.offset = 1 << 21;
	ck_assert_int_eq(fc_call(&c, FUSE_LSEEK, e.nodeid, &ls, sizeof(ls), NULL, 0,
				 sizeof(struct fuse_lseek_out)), -ENXIO);
	ls.offset = 0;
	ls.whence = SEEK_SET;
	ck_assert_int_eq(fc_call(&c, FUSE_LSEEK, e.nodeid, &ls, sizeof(ls), NULL, 0,
				 sizeof(struct fuse_lseek_out)), -EINVAL);
	fs.fh = fh;
	ck_assert_int_eq(fc_call(&c, FUSE_FSYNC, e.nodeid, &fs, sizeof(fs), NULL, 0, 0), 0);
	fs.fsync_flags = FUSE_FSYNC_FDATASYNC;
	ck_assert_int_eq(fc_call(&c, FUSE_FSYNC, e.nodeid, &fs, sizeof(fs), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_call(&c, FUSE_FSYNCDIR, e.nodeid, &fs, sizeof(fs), NULL, 0, 0),
			 -ENOTDIR);
	fl.fh = fh;
	ck_assert_int_eq(fc_call(&c, FUSE_FLUSH, e.nodeid, &fl, sizeof(fl), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_call(&c, FUSE_SYNCFS, FUSE_ROOT_ID, &fl, 8, NULL, 0, 0), 0);
	/* INTERRUPT gets no reply; an unknown opcode ENOSYS. */
	ck_assert_int_eq(fc_call(&c, FUSE_INTERRUPT, 0, &fl, 8, NULL, 0, 0), 1);
	ck_assert_int_eq(fc_call(&c, FUSE_GETLK, e.nodeid, NULL, 0, NULL, 0, 0), -ENOSYS);
	ck_assert_int_eq(fc_call(&c, FUSE_IOCTL, e.nodeid, NULL, 0, NULL, 0, 0), -ENOSYS);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
}
END_TEST

/* Build tools create, open, unlink and keep using the file. */
START_TEST(open_unlink_fstat)
{
	struct fuse_entry_out e;
	struct fuse_getattr_in gi = { 0 };
	char back[8];
	uint64_t fh;

	BEGIN();
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "tmp", O_RDWR, 0600, &e, &fh), 0);
	ck_assert_int_eq(fc_write(&c, e.nodeid, fh, 0, "data", 4), 4);
	ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "tmp"), 0);
	gi.getattr_flags = FUSE_GETATTR_FH;
	gi.fh = fh;
	ck_assert_int_eq(fc_call(&c, FUSE_GETATTR, e.nodeid, &gi, sizeof(gi), NULL, 0,
				 sizeof(struct fuse_attr_out)), 0);
	ck_assert_uint_eq(((struct fuse_attr_out *)fc_payload(&c))->attr.nlink, 0);
	ck_assert_uint_eq(((struct fuse_attr_out *)fc_payload(&c))->attr.size, 4);
	ck_assert_int_eq(fc_read(&c, e.nodeid, fh, 0, back, 8), 4);
	ck_assert_mem_eq(back, "data", 4);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
}
END_TEST

START_TEST(destroy_and_reset_forget_everything)
{
	struct fuse_init_in in = { .major = 7, .minor = 37 };
	struct fuse_server_stats st;
	struct fuse_entry_out e;
	struct fuse_attr a;
	uint64_t fh;

	BEGIN();
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "f", O_RDWR, 0600, &e, &fh), 0);
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "d", 0700, &e), 0);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, 3);
	ck_assert_uint_eq(st.handles, 1);
	ck_assert_int_eq(fc_call(&c, FUSE_DESTROY, 0, NULL, 0, NULL, 0, 0), 0);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, 1);
	ck_assert_uint_eq(st.handles, 0);
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, 64), 0);
	ck_assert_int_eq(fc_getattr(&c, e.nodeid, &a), -EBADF);
	/* A device reset: the same, at the next request. */
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	fuse_server_reset(c.s);
	ck_assert_int_eq(fc_getattr(&c, FUSE_ROOT_ID, &a), -EIO);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, 1);
	ck_assert_int_eq(fc_call(&c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, 64), 0);
	ck_assert_int_eq(fc_getattr(&c, e.nodeid, &a), -EBADF);
}
END_TEST

/* OPEN and CREATE say FOPEN_NOFLUSH in every cache mode (the server has
 * nothing to do at a guest's close()), with the cache mode's own flag;
 * a FLUSH that comes anyway (older guests) is still answered. */
START_TEST(open_flags_by_cache_mode)
{
	static const struct { enum fuse_cache cache; uint32_t want; } modes[] = {
		{ FUSE_CACHE_AUTO, FOPEN_NOFLUSH },
		{ FUSE_CACHE_ALWAYS, FOPEN_NOFLUSH | FOPEN_KEEP_CACHE },
		{ FUSE_CACHE_NEVER, FOPEN_NOFLUSH | FOPEN_DIRECT_IO },
	};
	struct fuse_server_cfg cfg = { .cache = modes[_i].cache };
	struct fuse_create_in ci = { .flags = O_RDWR, .mode = 0644 };
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_flush_in fl = { 0 };
	struct fuse_entry_out e;
	struct fuse_open_out o;

	umask(0);
	fc_tmpdir(top, sizeof(top), "fsopen");
	snprintf(share, sizeof(share), "%s/share", top);
	ck_assert_int_eq(mkdir(share, 0755), 0);
	fds_before = fc_count_fds();
	fc_start(&c, share, &cfg);
	ck_assert_int_eq(fc_call(&c, FUSE_CREATE, FUSE_ROOT_ID, &ci, sizeof(ci), "f", 2,
				 sizeof(e) + sizeof(o)), 0);
	memcpy(&e, fc_payload(&c), sizeof(e));
	memcpy(&o, (uint8_t *)fc_payload(&c) + sizeof(e), sizeof(o));
	ck_assert_uint_eq(o.open_flags, modes[_i].want);
	fl.fh = o.fh;
	ck_assert_int_eq(fc_call(&c, FUSE_FLUSH, e.nodeid, &fl, sizeof(fl), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_release(&c, e.nodeid, o.fh), 0);
	ck_assert_int_eq(fc_call(&c, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, 0, sizeof(o)), 0);
	memcpy(&o, fc_payload(&c), sizeof(o));
	ck_assert_uint_eq(o.open_flags, modes[_i].want);
	ck_assert_int_eq(fc_release(&c, e.nodeid, o.fh), 0);
	/* A FLUSH of a handle that is gone: EBADF, as before. */
	ck_assert_int_eq(fc_call(&c, FUSE_FLUSH, e.nodeid, &fl, sizeof(fl), NULL, 0, 0), -EBADF);
}
END_TEST

/* KVMINI_LOG=trace: a line per request with its opcode, node, name (made
 * printable) and result; nothing at the debug level. */
START_TEST(trace_lines)
{
	char path[128], buf[2048] = { 0 };
	struct fuse_entry_out e, miss;
	unsigned lines = 0;
	int fd, saved;

	BEGIN();
	host_write("f", "x");
	snprintf(path, sizeof(path), "%s/trace.txt", top);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, 2), 0);
	log_set_level(LOG_LEVEL_DEBUG);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	log_set_level(LOG_LEVEL_TRACE);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "f", &e), 0);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "no\x01such", &miss), -ENOENT); /* node 0 */
	log_set_level(LOG_LEVEL_WARN);
	ck_assert_int_ge(dup2(saved, 2), 0);
	close(saved);
	ck_assert_int_gt(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	close(fd);
	ck_assert_ptr_nonnull(strstr(buf, "kvmini: trace: test-fs: LOOKUP node 1 'f' 0x0 -> 0\r\n"));
	/* A miss is a negative entry (0); the control byte shows as '?'. */
	ck_assert_ptr_nonnull(strstr(buf, "kvmini: trace: test-fs: LOOKUP node 1 'no?such' 0x0 -> 0\r\n"));
	for (const char *p = buf; (p = strstr(p, "LOOKUP")); p++)
		lines++;
	ck_assert_uint_eq(lines, 2); /* the debug level traced nothing */
	fc_forget(&c, e.nodeid, 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_ops");
	TCase *tc = tcase_create("ops");

	/* _i == 0: the host's newest calls; 1: every fallback. */
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_loop_test(tc, init_negotiation, 0, 1);
	tcase_add_loop_test(tc, lookup_and_getattr, 0, 2);
	tcase_add_loop_test(tc, negative_lookups, 0, 1);
	tcase_add_loop_test(tc, create_write_read, 0, 2);
	tcase_add_loop_test(tc, directories, 0, 2);
	tcase_add_loop_test(tc, names_links_renames, 0, 2);
	tcase_add_loop_test(tc, attributes, 0, 2);
	tcase_add_loop_test(tc, xattrs, 0, 2);
	tcase_add_loop_test(tc, misc_ops, 0, 2);
	tcase_add_loop_test(tc, open_unlink_fstat, 0, 2);
	tcase_add_loop_test(tc, open_flags_by_cache_mode, 0, 3);
	tcase_add_loop_test(tc, trace_lines, 0, 1);
	tcase_add_loop_test(tc, destroy_and_reset_forget_everything, 0, 1);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
