/* The test-side FUSE client: see fuse_client.h. */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_client.h"

#define REQ_MAX (1100 * 1024)

void fc_tmpdir(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "/tmp/kvmini-%s-XXXXXX", tag);
	ck_assert_ptr_nonnull(mkdtemp(buf));
}

void fc_rmrf(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", path, path);
	ck_assert_int_eq(system(cmd), 0);
}

unsigned fc_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

void fc_start(struct fc *c, const char *root, const struct fuse_server_cfg *cfg)
{
	struct fuse_server_cfg sc = cfg ? *cfg : (struct fuse_server_cfg){ 0 };
	struct fuse_init_in in = { 0 };
	struct kv_err e = { 0 };
	int r;

	memset(c, 0, sizeof(*c));
	sc.root = root;
	sc.name = "test-fs";
	r = fuse_server_create(&sc, &c->s, &e);
	ck_assert_msg(r == 0, "fuse_server_create: %s", e.msg);
	in.major = 7;
	in.minor = 36;
	in.max_readahead = 128 * 1024;
	in.flags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_MAX_PAGES | FUSE_INIT_EXT |
		   FUSE_ATOMIC_O_TRUNC;
	ck_assert_int_eq(fc_call(c, FUSE_INIT, 0, &in, sizeof(in), NULL, 0,
				 sizeof(struct fuse_init_out)), 0);
}

void fc_stop(struct fc *c)
{
	fuse_server_destroy(c->s);
	c->s = NULL;
}

/* Cuts @buf into iovecs of @piece bytes (one when 0). */
static unsigned cut(struct iovec *iov, unsigned cap, void *buf, size_t len, unsigned piece)
{
	unsigned n = 0;
	size_t off = 0;

	if (!piece)
		piece = len ? (unsigned)len : 1;
	do {
		size_t l = len - off < piece ? len - off : piece;

		ck_assert_uint_lt(n, cap);
		iov[n++] = (struct iovec){ (uint8_t *)buf + off, l };
		off += l;
	} while (off < len);
	return n;
}

/* A request through the server's workers, waited for. */
struct fc_wait {
	struct fuse_request r;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	size_t n;
};

static void fc_done(struct fuse_request *r, size_t n)
{
	struct fc_wait *w = (struct fc_wait *)r;

	pthread_mutex_lock(&w->mu);
	w->n = n;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static size_t via_workers(struct fc *c, struct iovec *in, unsigned nin, struct iovec *out,
			  unsigned nout)
{
	struct fc_wait w = {
		.r = { .job.owner = c, .in = in, .nin = nin, .out = out, .nout = nout,
		       .done = fc_done },
		.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	};

	fuse_server_submit(c->s, &w.r);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return w.n;
}

int fc_call(struct fc *c, uint32_t op, uint64_t nodeid, const void *arg, size_t arg_len,
	    const void *tail, size_t tail_len, size_t room)
{
	static uint8_t req[REQ_MAX];
	struct fuse_in_header h = { 0 };
	struct fuse_out_header oh;
	struct iovec in[FUSE_SERVER_MAX_IOV], out[FUSE_SERVER_MAX_IOV];
	size_t len = sizeof(h) + arg_len + tail_len, n;
	unsigned nin, nout;

	ck_assert_uint_le(len, sizeof(req));
	ck_assert_uint_le(room, FC_REPLY_MAX);
	h.len = (uint32_t)len;
	h.opcode = op;
	h.unique = ++c->unique;
	h.nodeid = nodeid;
	memcpy(req, &h, sizeof(h));
	if (arg_len)
		memcpy(req + sizeof(h), arg, arg_len);
	if (tail_len)
		memcpy(req + sizeof(h) + arg_len, tail, tail_len);
	memset(c->reply, 0xa5, sizeof(c->reply));
	nin = cut(in, FUSE_SERVER_MAX_IOV, req, len, c->split);
	nout = cut(out, FUSE_SERVER_MAX_IOV, c->reply, sizeof(oh) + room, c->split);
	n = c->via_workers ? via_workers(c, in, nin, out, nout)
			   : fuse_server_handle(c->s, in, nin, out, nout);
	if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT) {
		ck_assert_uint_eq(n, 0);
		return 1;
	}
	/* Every reply: a whole header, within the buffer, ours. */
	ck_assert_uint_ge(n, sizeof(oh));
	ck_assert_uint_le(n, sizeof(oh) + room);
	memcpy(&oh, c->reply, sizeof(oh));
	ck_assert_uint_eq(oh.len, n);
	ck_assert_uint_eq(oh.unique, h.unique);
	ck_assert_int_le(oh.error, 0);
	ck_assert_int_gt(oh.error, -4096);
	if (oh.error)
		ck_assert_uint_eq(oh.len, sizeof(oh));
	/* Nothing written past the reply. */
	if (n < sizeof(oh) + room)
		ck_assert_uint_eq(c->reply[n], 0xa5);
	c->reply_len = n - sizeof(oh);
	return oh.error;
}

int fc_lookup(struct fc *c, uint64_t parent, const char *name, struct fuse_entry_out *e)
{
	int r = fc_call(c, FUSE_LOOKUP, parent, NULL, 0, name, strlen(name) + 1, sizeof(*e));

	if (!r) {
		ck_assert_uint_eq(c->reply_len, sizeof(*e));
		memcpy(e, fc_payload(c), sizeof(*e));
		/* Node 0 is a miss the guest may cache (e->entry_valid). */
		if (e->nodeid == 0)
			return -ENOENT;
	}
	return r;
}

int fc_getattr(struct fc *c, uint64_t node, struct fuse_attr *a)
{
	struct fuse_getattr_in in = { 0 };
	int r = fc_call(c, FUSE_GETATTR, node, &in, sizeof(in), NULL, 0,
			sizeof(struct fuse_attr_out));

	if (!r)
		memcpy(a, &((struct fuse_attr_out *)fc_payload(c))->attr, sizeof(*a));
	return r;
}

static int entry_reply(struct fc *c, int r, struct fuse_entry_out *e)
{
	if (!r && e) {
		ck_assert_uint_eq(c->reply_len, sizeof(*e));
		memcpy(e, fc_payload(c), sizeof(*e));
	}
	return r;
}

int fc_mkdir(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e)
{
	struct fuse_mkdir_in in = { .mode = mode };

	return entry_reply(c, fc_call(c, FUSE_MKDIR, parent, &in, sizeof(in), name,
				      strlen(name) + 1, sizeof(*e)), e);
}

int fc_create(struct fc *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	      struct fuse_entry_out *e, uint64_t *fh)
{
	struct fuse_create_in in = { .flags = flags, .mode = mode };
	int r = fc_call(c, FUSE_CREATE, parent, &in, sizeof(in), name, strlen(name) + 1,
			sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));

	if (!r) {
		ck_assert_uint_eq(c->reply_len,
				  sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
		if (e)
			memcpy(e, fc_payload(c), sizeof(*e));
		*fh = ((struct fuse_open_out *)((uint8_t *)fc_payload(c) +
						sizeof(struct fuse_entry_out)))->fh;
	}
	return r;
}

static int open_common(struct fc *c, uint32_t op, uint64_t node, uint32_t flags, uint64_t *fh)
{
	struct fuse_open_in in = { .flags = flags };
	int r = fc_call(c, op, node, &in, sizeof(in), NULL, 0, sizeof(struct fuse_open_out));

	if (!r)
		*fh = ((struct fuse_open_out *)fc_payload(c))->fh;
	return r;
}

int fc_open(struct fc *c, uint64_t node, uint32_t flags, uint64_t *fh)
{
	return open_common(c, FUSE_OPEN, node, flags, fh);
}

int fc_opendir(struct fc *c, uint64_t node, uint64_t *fh)
{
	return open_common(c, FUSE_OPENDIR, node, 0, fh);
}

int fc_release(struct fc *c, uint64_t node, uint64_t fh)
{
	struct fuse_release_in in = { .fh = fh };

	return fc_call(c, FUSE_RELEASE, node, &in, sizeof(in), NULL, 0, 0);
}

int fc_read(struct fc *c, uint64_t node, uint64_t fh, uint64_t off, void *buf, uint32_t size)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = size };
	int r = fc_call(c, FUSE_READ, node, &in, sizeof(in), NULL, 0, size);

	if (r)
		return r;
	memcpy(buf, fc_payload(c), c->reply_len);
	return (int)c->reply_len;
}

int fc_write(struct fc *c, uint64_t node, uint64_t fh, uint64_t off, const void *buf,
	     uint32_t size)
{
	struct fuse_write_in in = { .fh = fh, .offset = off, .size = size };
	int r = fc_call(c, FUSE_WRITE, node, &in, sizeof(in), buf, size,
			sizeof(struct fuse_write_out));

	if (r)
		return r;
	return (int)((struct fuse_write_out *)fc_payload(c))->size;
}

int fc_unlink(struct fc *c, uint64_t parent, const char *name)
{
	return fc_call(c, FUSE_UNLINK, parent, NULL, 0, name, strlen(name) + 1, 0);
}

int fc_rmdir(struct fc *c, uint64_t parent, const char *name)
{
	return fc_call(c, FUSE_RMDIR, parent, NULL, 0, name, strlen(name) + 1, 0);
}

int fc_rename(struct fc *c, uint64_t dir, const char *from, uint64_t newdir, const char *to,
	      uint32_t flags)
{
	struct fuse_rename2_in in = { .newdir = newdir, .flags = flags };
	char names[600];
	size_t l1 = strlen(from) + 1, l2 = strlen(to) + 1;

	ck_assert_uint_le(l1 + l2, sizeof(names));
	memcpy(names, from, l1);
	memcpy(names + l1, to, l2);
	if (!flags)
		return fc_call(c, FUSE_RENAME, dir, &in, sizeof(struct fuse_rename_in), names,
			       l1 + l2, 0);
	return fc_call(c, FUSE_RENAME2, dir, &in, sizeof(in), names, l1 + l2, 0);
}

int fc_symlink(struct fc *c, uint64_t parent, const char *name, const char *target,
	       struct fuse_entry_out *e)
{
	static char names[5000];
	size_t l1 = strlen(name) + 1, l2 = strlen(target) + 1;

	ck_assert_uint_le(l1 + l2, sizeof(names));
	memcpy(names, name, l1);
	memcpy(names + l1, target, l2);
	return entry_reply(c, fc_call(c, FUSE_SYMLINK, parent, NULL, 0, names, l1 + l2,
				      sizeof(struct fuse_entry_out)), e);
}

int fc_link(struct fc *c, uint64_t node, uint64_t newparent, const char *name,
	    struct fuse_entry_out *e)
{
	struct fuse_link_in in = { .oldnodeid = node };

	return entry_reply(c, fc_call(c, FUSE_LINK, newparent, &in, sizeof(in), name,
				      strlen(name) + 1, sizeof(struct fuse_entry_out)), e);
}

int fc_mknod(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e)
{
	struct fuse_mknod_in in = { .mode = mode };

	return entry_reply(c, fc_call(c, FUSE_MKNOD, parent, &in, sizeof(in), name,
				      strlen(name) + 1, sizeof(struct fuse_entry_out)), e);
}

int fc_setattr(struct fc *c, uint64_t node, const struct fuse_setattr_in *in,
	       struct fuse_attr *a)
{
	int r = fc_call(c, FUSE_SETATTR, node, in, sizeof(*in), NULL, 0,
			sizeof(struct fuse_attr_out));

	if (!r && a)
		memcpy(a, &((struct fuse_attr_out *)fc_payload(c))->attr, sizeof(*a));
	return r;
}

int fc_readlink(struct fc *c, uint64_t node, char *buf, size_t n)
{
	int r = fc_call(c, FUSE_READLINK, node, NULL, 0, NULL, 0, 4096);

	if (r)
		return r;
	ck_assert_uint_lt(c->reply_len, n);
	memcpy(buf, fc_payload(c), c->reply_len);
	buf[c->reply_len] = 0;
	return 0;
}

int fc_setxattr(struct fc *c, uint64_t node, const char *name, const void *v, uint32_t len,
		uint32_t flags)
{
	struct fuse_setxattr_in in = { .size = len, .flags = flags };
	static char tail[70000];
	size_t l = strlen(name) + 1;

	ck_assert_uint_le(l + len, sizeof(tail));
	memcpy(tail, name, l);
	memcpy(tail + l, v, len);
	return fc_call(c, FUSE_SETXATTR, node, &in, FUSE_COMPAT_SETXATTR_IN_SIZE, tail, l + len, 0);
}

int fc_getxattr(struct fc *c, uint64_t node, const char *name, void *buf, uint32_t size)
{
	struct fuse_getxattr_in in = { .size = size };
	int r = fc_call(c, FUSE_GETXATTR, node, &in, sizeof(in), name, strlen(name) + 1,
			size ? size : sizeof(struct fuse_getxattr_out));

	if (r)
		return r;
	if (!size)
		return (int)((struct fuse_getxattr_out *)fc_payload(c))->size;
	memcpy(buf, fc_payload(c), c->reply_len);
	return (int)c->reply_len;
}

void fc_forget(struct fc *c, uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };

	fc_call(c, FUSE_FORGET, node, &in, sizeof(in), NULL, 0, 0);
}

int fc_readdir(struct fc *c, uint64_t node, uint64_t fh, bool plus, uint64_t off,
	       char *names, size_t n, uint64_t *next_off)
{
	struct fuse_read_in in = { .fh = fh, .offset = off, .size = 4096 };
	int r = fc_call(c, plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, &in, sizeof(in), NULL,
			0, 4096);
	int count = 0;
	size_t pos = 0;

	if (r)
		return r;
	names[0] = 0;
	while (pos < c->reply_len) {
		const uint8_t *at = (const uint8_t *)fc_payload(c) + pos;
		const struct fuse_dirent *d;
		size_t rec;

		if (plus) {
			d = &((const struct fuse_direntplus *)at)->dirent;
			rec = FUSE_DIRENTPLUS_SIZE((const struct fuse_direntplus *)at);
		} else {
			d = (const struct fuse_dirent *)at;
			rec = FUSE_DIRENT_SIZE(d);
		}
		ck_assert_uint_le(pos + rec, c->reply_len);
		ck_assert_uint_lt(strlen(names) + d->namelen + 2, n);
		strncat(names, d->name, d->namelen);
		strcat(names, "\n");
		*next_off = d->off;
		pos += rec;
		count++;
	}
	return count;
}
