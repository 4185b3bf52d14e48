/* Fuzz target: the FUSE server (devices/fs/) over a real temporary share
 * folder, fed a stream of FUSE requests shaped like a guest's (opcodes,
 * nodeids and handles it got back, names from a dictionary of escape
 * attempts, lengths and buffers the input bends).
 *
 * Beside the share is a canary folder, and the share holds symlinks into
 * it (relative, absolute, to its directory) and to /proc/self/root. The
 * oracle, after every input:
 * - every reply fits the writable buffers, bytes past it are untouched,
 *   and it carries a valid fuse_out_header (length = bytes written,
 *   the request's unique, an errno in range, no payload with an error);
 *   requests that get no reply (FORGET...) write nothing;
 * - every fd the server holds (inodes and handles) is inside the share
 *   (its /proc/self/fd link names a path under it, on its device);
 * - inotify saw nothing happen in the canary folder or next to the share
 *   (no open, create, write, attribute change, delete, move);
 * - the canary tree is as it was: names, types, modes, sizes, link
 *   counts, owners, mtimes, ctimes, symlink targets, file contents;
 * - once the server is destroyed, no fd is left open.
 * The share is rebuilt before each input; RLIMIT_FSIZE bounds the files
 * the input can grow. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/fuse_server.h"
#include "fuzz_common.h"
#include "fuzz_fs_tree.h"
#include "../../devices/fs/fs_internal.h"

#define MAX_REQS 48
#define POOL 32
#define OUT_MAX (256 * 1024 + 16)

static struct fs_tree tree;
static uint8_t req[80 * 1024] __attribute__((aligned(8)));
static uint8_t out[OUT_MAX] __attribute__((aligned(8)));

/* Every fd the server holds (inodes and handles) is inside the share. */
static void check_server_fds(struct fuse_server *s)
{
	for (uint32_t i = 0; i < s->inodes.cap; i++)
		if (s->inodes.slot[i].fd >= 0)
			tree_check_fd_inside(&tree, s->inodes.slot[i].fd);
	for (uint32_t i = 0; i < s->handles.cap; i++)
		if (s->handles.slot[i].fd >= 0)
			tree_check_fd_inside(&tree, s->handles.slot[i].fd);
}

void fuzz_init(void)
{
	struct rlimit fsize = { 8 << 20, 8 << 20 };

	umask(0); /* as the server's workers have it */
	if (setrlimit(RLIMIT_FSIZE, &fsize))
		abort();
	tree_init(&tree);
}

/* ---- requests ---- */

static const uint32_t opcodes[] = {
	FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_SETATTR, FUSE_READLINK, FUSE_SYMLINK,
	FUSE_MKNOD, FUSE_MKDIR, FUSE_UNLINK, FUSE_RMDIR, FUSE_RENAME, FUSE_LINK, FUSE_OPEN,
	FUSE_READ, FUSE_WRITE, FUSE_STATFS, FUSE_RELEASE, FUSE_FSYNC, FUSE_SETXATTR,
	FUSE_GETXATTR, FUSE_LISTXATTR, FUSE_REMOVEXATTR, FUSE_FLUSH, FUSE_INIT, FUSE_OPENDIR,
	FUSE_READDIR, FUSE_RELEASEDIR, FUSE_FSYNCDIR, FUSE_ACCESS, FUSE_CREATE, FUSE_INTERRUPT,
	FUSE_DESTROY, FUSE_BATCH_FORGET, FUSE_FALLOCATE, FUSE_READDIRPLUS, FUSE_RENAME2,
	FUSE_LSEEK, FUSE_SYNCFS, FUSE_GETLK, FUSE_IOCTL, FUSE_LOOKUP, FUSE_LOOKUP, FUSE_OPEN,
};
#define NR_OPCODES (sizeof(opcodes) / sizeof(opcodes[0]))

static const char *const names[] = {
	"a", "d", "e", "out", "dirlink", "abs", "magic", ".", "..", "new", "new2", "x/y",
	"../canary", "secret", "inner", "canary", "/", "", "user.k", "trusted.k", "fifo",
	"..\x00", "share", "link",
};
#define NR_NAMES (sizeof(names) / sizeof(names[0]))

struct session {
	struct fuse_server *s;
	uint64_t nodes[POOL], fhs[POOL];
	unsigned nr_nodes, nr_fhs;
	uint64_t unique;
};

static void remember(uint64_t *pool, unsigned *n, uint64_t v)
{
	if (v)
		pool[(*n)++ % POOL] = v;
}

static uint64_t pick(struct fz *f, const uint64_t *pool, unsigned n)
{
	uint8_t b = fz_u8(f);

	if (b == 0xff)
		return fz_u64(f);
	if (!n || b == 0)
		return FUSE_ROOT_ID;
	return pool[b % (n < POOL ? n : POOL)];
}

/* A name (with its NUL) appended at @t; returns bytes added. */
static size_t put_name(struct fz *f, uint8_t *t, size_t room)
{
	uint8_t b = fz_u8(f);
	size_t len;

	if (b < 0xf0) {
		const char *n = names[b % NR_NAMES];

		len = strlen(n) + 1;
		memcpy(t, n, len);
		return len;
	}
	len = b == 0xff ? 300 : fz_u8(f); /* raw, perhaps without a NUL */
	if (len > room)
		len = room;
	if (b == 0xff)
		memset(t, 'n', len);
	else
		fz_bytes(f, t, len);
	return len;
}

/* Fills @arg with @len bytes: mostly small, sometimes anything. */
static uint64_t small(struct fz *f)
{
	uint8_t b = fz_u8(f);

	return b < 0xe0 ? (uint64_t)b * 512 : fz_u64(f);
}

/* Builds the arguments and tail of @op at @a; returns their length. */
static size_t build(struct fz *f, struct session *ss, uint32_t op, uint8_t *a, size_t cap)
{
	union fuse_args *u = (union fuse_args *)a;
	size_t n = 0;

	memset(a, 0, sizeof(*u));
	switch (op) {
	case FUSE_INIT:
		u->init.major = 7;
		u->init.minor = fz_u8(f) < 0xf0 ? 37 : fz_u8(f);
		u->init.flags = fz_u32(f);
		return sizeof(u->init);
	case FUSE_FORGET:
		u->forget.nlookup = fz_u8(f);
		return sizeof(u->forget);
	case FUSE_BATCH_FORGET: {
		unsigned cnt = fz_u8(f) % 8;

		u->batch_forget.count = cnt;
		n = sizeof(u->batch_forget);
		for (unsigned i = 0; i < cnt; i++, n += sizeof(struct fuse_forget_one)) {
			struct fuse_forget_one o = { pick(f, ss->nodes, ss->nr_nodes), fz_u8(f) };

			memcpy(a + n, &o, sizeof(o));
		}
		return n;
	}
	case FUSE_GETATTR:
		u->getattr.getattr_flags = fz_u8(f) & 1;
		u->getattr.fh = pick(f, ss->fhs, ss->nr_fhs);
		return sizeof(u->getattr);
	case FUSE_SETATTR:
		u->setattr.valid = fz_u16(f);
		u->setattr.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->setattr.size = small(f);
		u->setattr.mode = fz_u16(f);
		u->setattr.uid = fz_u8(f) < 0x80 ? getuid() : fz_u32(f);
		u->setattr.gid = getgid();
		u->setattr.mtime = fz_u32(f);
		u->setattr.mtimensec = fz_u32(f) % 1100000000u;
		return sizeof(u->setattr);
	case FUSE_SYMLINK:
		n = put_name(f, a, cap);
		return n + put_name(f, a + n, cap - n);
	case FUSE_MKNOD:
		u->mknod.mode = (uint32_t)(fz_u8(f) & 0xf) << 12 | (fz_u16(f) & 07777);
		n = sizeof(u->mknod);
		return n + put_name(f, a + n, cap - n);
	case FUSE_MKDIR:
		u->mkdir.mode = fz_u16(f);
		n = sizeof(u->mkdir);
		return n + put_name(f, a + n, cap - n);
	case FUSE_LOOKUP:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_REMOVEXATTR:
		return put_name(f, a, cap);
	case FUSE_RENAME:
	case FUSE_RENAME2:
		u->rename2.newdir = pick(f, ss->nodes, ss->nr_nodes);
		u->rename2.flags = fz_u8(f) & 7;
		n = op == FUSE_RENAME ? sizeof(u->rename) : sizeof(u->rename2);
		n += put_name(f, a + n, cap - n);
		return n + put_name(f, a + n, cap - n);
	case FUSE_LINK:
		u->link.oldnodeid = pick(f, ss->nodes, ss->nr_nodes);
		n = sizeof(u->link);
		return n + put_name(f, a + n, cap - n);
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		u->open.flags = fz_u32(f) & (O_ACCMODE | O_TRUNC | O_APPEND | O_EXCL | O_CREAT |
					     O_DIRECT | O_SYNC | O_NOFOLLOW);
		return sizeof(u->open);
	case FUSE_CREATE:
		u->create.flags = fz_u32(f) & (O_ACCMODE | O_TRUNC | O_APPEND | O_EXCL);
		u->create.mode = S_IFREG | (fz_u16(f) & 07777);
		n = sizeof(u->create);
		return n + put_name(f, a + n, cap - n);
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		u->read.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->read.offset = small(f);
		u->read.size = (uint32_t)small(f);
		return sizeof(u->read);
	case FUSE_WRITE: {
		size_t len = fz_u8(f) * 37u;

		u->write.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->write.offset = small(f);
		u->write.size = (uint32_t)len;
		memset(a + sizeof(u->write), 'w', len);
		return sizeof(u->write) + len;
	}
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_FLUSH:
		u->release.fh = pick(f, ss->fhs, ss->nr_fhs);
		return op == FUSE_FLUSH ? sizeof(u->flush) : sizeof(u->release);
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		u->fsync.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->fsync.fsync_flags = fz_u8(f) & 1;
		return sizeof(u->fsync);
	case FUSE_SETXATTR: {
		size_t len = fz_u8(f);

		u->setxattr.size = (uint32_t)len;
		u->setxattr.flags = fz_u8(f) & 3;
		n = FUSE_COMPAT_SETXATTR_IN_SIZE;
		n += put_name(f, a + n, cap - n);
		memset(a + n, 'v', len);
		return n + len;
	}
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		u->getxattr.size = fz_u8(f) < 0x40 ? 0 : fz_u16(f);
		n = sizeof(u->getxattr);
		return op == FUSE_LISTXATTR ? n : n + put_name(f, a + n, cap - n);
	case FUSE_ACCESS:
		u->access.mask = fz_u8(f) & 0xf;
		return sizeof(u->access);
	case FUSE_FALLOCATE:
		u->fallocate.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->fallocate.offset = small(f);
		u->fallocate.length = small(f);
		u->fallocate.mode = fz_u8(f) & 0x7f;
		return sizeof(u->fallocate);
	case FUSE_LSEEK:
		u->lseek.fh = pick(f, ss->fhs, ss->nr_fhs);
		u->lseek.offset = small(f);
		u->lseek.whence = fz_u8(f) % 5;
		return sizeof(u->lseek);
	case FUSE_INTERRUPT:
	case FUSE_SYNCFS:
		return 8;
	default:
		return 0; /* STATFS, READLINK, DESTROY, unserved ones */
	}
}

/* The writable size: mostly enough, else on the edges of what replies
 * need, or anything. */
static size_t room_for(uint8_t b, struct fz *f)
{
	static const size_t rooms[] = { 16 + 4096, 0, 8, 16, 17, 16 + 64, 16 + 104, 16 + 127,
					16 + 128, 16 + 143, 16 + 144, 4096, 65536 + 16 };

	if (b < sizeof(rooms) / sizeof(rooms[0]))
		return rooms[b];
	return b == 0xff ? fz_u32(f) % OUT_MAX : rooms[0];
}

/* Cuts [buf, buf+len) into 1..4 iovecs at input-chosen points. */
static unsigned cut(struct fz *f, bool split, uint8_t *buf, size_t len, struct iovec *iov)
{
	unsigned n = split ? 1 + fz_u8(f) % 4 : 1;
	size_t at = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t l = i + 1 == n ? len - at : (len - at) * (fz_u8(f) % 100) / 100;

		iov[i] = (struct iovec){ buf + at, l };
		at += l;
	}
	return n;
}

static void harvest(struct session *ss, uint32_t op, const uint8_t *p, size_t len)
{
	if ((op == FUSE_LOOKUP || op == FUSE_MKDIR || op == FUSE_MKNOD || op == FUSE_SYMLINK ||
	     op == FUSE_LINK || op == FUSE_CREATE) && len >= sizeof(struct fuse_entry_out))
		remember(ss->nodes, &ss->nr_nodes, ((const struct fuse_entry_out *)p)->nodeid);
	if (op == FUSE_CREATE && len >= 144)
		remember(ss->fhs, &ss->nr_fhs, ((const struct fuse_open_out *)(p + 128))->fh);
	if ((op == FUSE_OPEN || op == FUSE_OPENDIR) && len >= sizeof(struct fuse_open_out))
		remember(ss->fhs, &ss->nr_fhs, ((const struct fuse_open_out *)p)->fh);
	if (op == FUSE_READDIRPLUS) {
		for (size_t at = 0; at + sizeof(struct fuse_direntplus) <= len;) {
			const struct fuse_direntplus *d = (const void *)(p + at);

			remember(ss->nodes, &ss->nr_nodes, d->entry_out.nodeid);
			at += FUSE_DIRENTPLUS_SIZE(d);
		}
	}
}

static void one_request(struct fz *f, struct session *ss, bool first)
{
	struct fuse_in_header h = { 0 };
	struct iovec in[4], ov[4];
	/* Per request: opcode, flags, room, nodeid, arguments. */
	uint8_t sel = first ? 0 : fz_u8(f), flags = first ? 0 : fz_u8(f);
	size_t room = first ? 16 + 64 : room_for(fz_u8(f), f);
	uint32_t op = first ? FUSE_INIT : opcodes[sel % NR_OPCODES];
	size_t alen, len, n;
	unsigned nin, nout;

	if (sel >= 0xfc)
		op = fz_u32(f) % 64;
	h.opcode = op;
	h.unique = ++ss->unique;
	h.nodeid = pick(f, ss->nodes, ss->nr_nodes);
	alen = build(f, ss, op, req + sizeof(h), sizeof(req) - sizeof(h) - 64);
	if (flags & 8) /* raw argument bytes instead */
		alen = fz_bytes(f, req + sizeof(h), fz_u8(f));
	len = sizeof(h) + alen;
	h.len = (uint32_t)len;
	if (flags & 1)
		h.len += (uint32_t)(int8_t)fz_u8(f);
	if (flags & 4)
		h.total_extlen = fz_u16(f);
	memcpy(req, &h, sizeof(h));
	if (flags & 0x10) /* a truncated request */
		len -= fz_u8(f) % len;
	memset(out, 0x5a, room);
	nin = cut(f, flags & 2, req, len, in);
	nout = cut(f, flags & 2, out, room, ov);
	n = fuse_server_handle(ss->s, in, nin, ov, nout);

	/* The oracle on the reply. */
	FUZZ_CHECK(n <= room);
	for (size_t i = n; i < room; i++)
		FUZZ_CHECK(out[i] == 0x5a);
	if (n == 0)
		return; /* no header, no room, or no reply expected */
	struct fuse_out_header oh;

	FUZZ_CHECK(n >= sizeof(oh));
	memcpy(&oh, out, sizeof(oh));
	FUZZ_CHECK(oh.len == n);
	FUZZ_CHECK(oh.unique == h.unique);
	FUZZ_CHECK(oh.error <= 0 && oh.error > -4096);
	FUZZ_CHECK(oh.error == 0 || n == sizeof(oh));
	FUZZ_CHECK(op != FUSE_FORGET && op != FUSE_BATCH_FORGET && op != FUSE_INTERRUPT);
	if (!oh.error)
		harvest(ss, op, out + sizeof(oh), n - sizeof(oh));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint8_t mode = fz_u8(&f);
	struct fuse_server_cfg cfg = {
		.root = tree.share, .name = "fuzz-fs", .readonly = mode & 1, .cache = (mode >> 1) % 3,
		.max_inodes = 24, .max_handles = 6, .host_disable = mode >> 3,
	};
	struct session ss = { 0 };
	struct kv_err e = { 0 };
	unsigned base_fds;

	/* Past RLIMIT_FSIZE, EFBIG rather than a signal (libFuzzer installs
	 * its own SIGXFSZ handler after fuzz_init). */
	signal(SIGXFSZ, SIG_IGN);
	tree_reset_share(&tree);
	tree_events(&tree, false);
	base_fds = tree_count_fds();
	if (fuse_server_create(&cfg, &ss.s, &e)) {
		fprintf(stderr, "fuzz_fs: %s\n", e.msg);
		abort();
	}
	for (unsigned i = 0; i < MAX_REQS && (i == 0 || !fz_empty(&f)); i++) {
		if (i && fz_u8(&f) == 0xee)
			fuse_server_reset(ss.s);
		one_request(&f, &ss, i == 0);
	}
	check_server_fds(ss.s);
	fuse_server_destroy(ss.s);
	if (tree_count_fds() != base_fds) {
		fprintf(stderr, "%u fds open before the server, %u after it:\n", base_fds,
			tree_count_fds());
		FUZZ_CHECK(system("ls -l /proc/$PPID/fd >&2") >= 0);
		FUZZ_CHECK(!"the server leaked an fd");
	}
	tree_events(&tree, true);
	tree_check_canary(&tree);
	return 0;
}

/* ---- seeds ---- */

static void seed_req(struct fw *w, uint8_t sel, uint8_t flags, uint8_t node,
		     const uint8_t *args, size_t n)
{
	fw_u8(w, 0x11); /* no reset */
	fw_u8(w, sel);
	fw_u8(w, flags);
	fw_u8(w, 0);    /* room: enough */
	fw_u8(w, node);
	for (size_t i = 0; i < n; i++)
		fw_u8(w, args[i]);
}

void fuzz_write_seeds(const char *dir)
{
	struct fw w = { 0 };
	/* Indexes into opcodes[] and names[] (see above). */
	enum { LOOKUP = 0, GETATTR = 2, OPEN = 12, READ = 13, CREATE = 29, RPLUS = 34,
	       OPENDIR = 24, SETATTR = 3 };

	fw_u8(&w, 0);        /* rw share, cache auto, newest host calls */
	fw_u8(&w, 0);        /* INIT: nodeid pick */
	fw_u8(&w, 0);        /* minor 37 */
	fw_u32(&w, FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES);
	for (uint8_t nm = 0; nm < 24; nm++)
		seed_req(&w, LOOKUP, 0, 0, (uint8_t[]){ nm }, 1);
	seed_req(&w, OPEN, 0, 1, (uint8_t[]){ 0, 0, 0, 0 }, 4);
	seed_req(&w, READ, 0, 1, (uint8_t[]){ 1, 0, 8 }, 3);
	seed_req(&w, CREATE, 0, 0, (uint8_t[]){ 2, 0, 0, 0, 0xa4, 0x01, 9 }, 7);
	seed_req(&w, OPENDIR, 0, 0, (uint8_t[]){ 0, 0, 0, 0 }, 4);
	seed_req(&w, RPLUS, 0, 0, (uint8_t[]){ 2, 0, 8 }, 3);
	seed_req(&w, GETATTR, 0, 2, (uint8_t[]){ 0, 0 }, 2);
	seed_req(&w, SETATTR, 0, 3, (uint8_t[]){ 0x09, 0, 0, 0, 0xff, 0x01 }, 6);
	fuzz_seed(dir, "session", w.buf, w.n);

	/* The escape attempts: through each link, then "..". */
	struct fw x = { 0 };

	fw_u8(&x, 8);        /* no openat2 */
	fw_u8(&x, 0);
	fw_u8(&x, 0);
	fw_u32(&x, 0);
	for (uint8_t nm = 3; nm < 7; nm++) {
		seed_req(&x, LOOKUP, 0, 0, (uint8_t[]){ nm }, 1);
		seed_req(&x, LOOKUP, 0, 1, (uint8_t[]){ 13 }, 1);
		seed_req(&x, OPEN, 0, 1, (uint8_t[]){ 2, 0, 0, 0 }, 4);
	}
	seed_req(&x, LOOKUP, 0, 0, (uint8_t[]){ 8 }, 1);
	seed_req(&x, LOOKUP, 0, 0, (uint8_t[]){ 12 }, 1);
	fuzz_seed(dir, "escapes", x.buf, x.n);
}
