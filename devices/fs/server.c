/* The FUSE server: creation, the per-request path (parse, check the
 * connection state and read-only rule, act, write the reply) and the
 * connection-level operations (INIT, DESTROY, INTERRUPT, SYNCFS). The
 * other operations are in ops_entry.c, ops_attr.c, ops_file.c and
 * ops_dir.c; host.c holds the careful system calls. See
 * include/kvmini/fuse_server.h for what the guest may and may not do. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_internal.h"

/* ---- helpers shared by the operations ---- */

uint64_t fs_timeout(const struct fuse_server *s)
{
	switch (s->cache) {
	case FUSE_CACHE_ALWAYS:
		return 86400;
	case FUSE_CACHE_NEVER:
		return 0;
	default:
		return 1;
	}
}

size_t fs_reply_room(const struct fs_req *r)
{
	size_t room;

	if (r->p.out_space < sizeof(struct fuse_out_header))
		return 0;
	room = r->p.out_space - sizeof(struct fuse_out_header);
	return room < FS_REPLY_MAX ? room : FS_REPLY_MAX;
}

int fs_get_node(struct fs_req *r, struct fs_iref *ref)
{
	return fs_itab_get(&r->s->inodes, r->p.h.nodeid, ref);
}

void fs_log_guest(struct fuse_server *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	bool ok;

	pthread_mutex_lock(&s->log_lock);
	ok = log_ratelimit_ok(&s->rl);
	pthread_mutex_unlock(&s->log_lock);
	if (!ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	LOG_WARN("%s: %s", s->name, msg);
}

/* ---- connection-level operations ---- */

/* What the server offers in INIT (and uses when the guest agrees). */
static uint64_t wanted_flags(const struct fuse_server *s)
{
	uint64_t f = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES |
		     FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO |
		     FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

	if (s->cache == FUSE_CACHE_AUTO)
		f |= FUSE_AUTO_INVAL_DATA;
	if (s->cache == FUSE_CACHE_ALWAYS)
		f |= FUSE_CACHE_SYMLINKS;
	return f;
}

static int op_init(struct fs_req *r)
{
	struct fuse_server *s = r->s;
	const struct fuse_init_in *in = &r->p.a.init;
	struct fuse_init_out *o = (struct fuse_init_out *)r->sc->reply;
	uint64_t guest = in->flags;

	memset(o, 0, sizeof(*o));
	o->major = FUSE_KERNEL_VERSION;
	o->minor = FUSE_KERNEL_MINOR_VERSION;
	r->reply_len = sizeof(*o);
	if (in->major > FUSE_KERNEL_VERSION)
		return 0; /* our major only: the kernel then retries with it */
	if (in->major < FUSE_KERNEL_VERSION || in->minor < FS_MIN_MINOR) {
		fs_log_guest(s, "guest speaks FUSE %u.%u, the server needs 7.%u or later",
			     in->major, in->minor, FS_MIN_MINOR);
		return -EPROTO;
	}
	if (in->flags & FUSE_INIT_EXT)
		guest |= (uint64_t)in->flags2 << 32;

	pthread_mutex_lock(&s->state_lock);
	if (s->initialized) {
		pthread_mutex_unlock(&s->state_lock);
		fs_log_guest(s, "FUSE_INIT on a live connection");
		return -EPROTO;
	}
	s->initialized = true;
	s->minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
	s->flags = wanted_flags(s) & guest;
	pthread_mutex_unlock(&s->state_lock);

	o->minor = s->minor;
	o->max_readahead = in->max_readahead;
	o->flags = (uint32_t)s->flags;
	o->max_background = 64;
	o->congestion_threshold = 48;
	o->max_write = FUSE_SERVER_MAX_IO;
	o->time_gran = 1;
	o->max_pages = FUSE_SERVER_MAX_IO / 4096;
	return 0;
}

/* Forgets the connection: every inode but the root, every handle. */
static void forget_connection(struct fuse_server *s)
{
	fs_htab_release_all(&s->handles);
	fs_itab_forget_all(&s->inodes);
	pthread_mutex_lock(&s->state_lock);
	s->initialized = false;
	s->minor = 0;
	s->flags = 0;
	pthread_mutex_unlock(&s->state_lock);
}

static int op_destroy(struct fs_req *r)
{
	forget_connection(r->s);
	return 0;
}

static int op_interrupt(struct fs_req *r)
{
	/* Host calls here are not interruptible (and Linux's virtio-fs
	 * sends no INTERRUPT): nothing to do, no reply. */
	return 0;
}

static int op_syncfs(struct fs_req *r)
{
	return syncfs(r->s->root_dirfd) < 0 ? -errno : 0;
}

/* ---- the request path ---- */

typedef int (*fs_op_fn)(struct fs_req *r);

static const fs_op_fn ops[] = {
	[FUSE_LOOKUP] = fs_op_lookup,
	[FUSE_FORGET] = fs_op_forget,
	[FUSE_GETATTR] = fs_op_getattr,
	[FUSE_SETATTR] = fs_op_setattr,
	[FUSE_READLINK] = fs_op_readlink,
	[FUSE_SYMLINK] = fs_op_symlink,
	[FUSE_MKNOD] = fs_op_mknod,
	[FUSE_MKDIR] = fs_op_mkdir,
	[FUSE_UNLINK] = fs_op_unlink,
	[FUSE_RMDIR] = fs_op_rmdir,
	[FUSE_RENAME] = fs_op_rename,
	[FUSE_LINK] = fs_op_link,
	[FUSE_OPEN] = fs_op_open,
	[FUSE_READ] = fs_op_read,
	[FUSE_WRITE] = fs_op_write,
	[FUSE_STATFS] = fs_op_statfs,
	[FUSE_RELEASE] = fs_op_release,
	[FUSE_FSYNC] = fs_op_fsync,
	[FUSE_SETXATTR] = fs_op_setxattr,
	[FUSE_GETXATTR] = fs_op_getxattr,
	[FUSE_LISTXATTR] = fs_op_listxattr,
	[FUSE_REMOVEXATTR] = fs_op_removexattr,
	[FUSE_FLUSH] = fs_op_flush,
	[FUSE_INIT] = op_init,
	[FUSE_OPENDIR] = fs_op_opendir,
	[FUSE_READDIR] = fs_op_readdir,
	[FUSE_RELEASEDIR] = fs_op_releasedir,
	[FUSE_FSYNCDIR] = fs_op_fsyncdir,
	[FUSE_ACCESS] = fs_op_access,
	[FUSE_CREATE] = fs_op_create,
	[FUSE_INTERRUPT] = op_interrupt,
	[FUSE_DESTROY] = op_destroy,
	[FUSE_BATCH_FORGET] = fs_op_batch_forget,
	[FUSE_FALLOCATE] = fs_op_fallocate,
	[FUSE_READDIRPLUS] = fs_op_readdir,
	[FUSE_RENAME2] = fs_op_rename,
	[FUSE_LSEEK] = fs_op_lseek,
	[FUSE_SYNCFS] = op_syncfs,
};

/* Runs the request's operation: 0 or -errno for the reply. */
static int dispatch(struct fs_req *r)
{
	struct fuse_server *s = r->s;
	uint32_t op = r->p.h.opcode;
	bool live;

	if (op >= sizeof(ops) / sizeof(ops[0]) || !ops[op])
		return -ENOSYS; /* the parser knows no more opcodes than this table */
	pthread_mutex_lock(&s->state_lock);
	live = s->initialized;
	pthread_mutex_unlock(&s->state_lock);
	if (!live && op != FUSE_INIT)
		return -EIO; /* nothing before INIT (a FORGET is dropped) */
	if (s->readonly && fuse_opcode_modifies(op))
		return -EROFS;
	return ops[op](r);
}

/* Writes the reply: header (and the payload unless already in place).
 * Returns its length; 0 when there is none. */
static size_t write_reply(struct fs_req *r, int err)
{
	struct fuse_out_header oh = { 0 };
	size_t payload = err ? 0 : r->reply_len;

	if (r->p.noreply || !r->p.have_header || r->p.out_space < sizeof(oh))
		return 0;
	if (payload > r->p.out_space - sizeof(oh)) {
		/* An operation overstepped its room: a bug, answered as EIO
		 * rather than written past the guest's buffers. */
		fs_log_guest(r->s, "reply of %zu bytes for %s exceeds the buffers", payload,
			     fuse_opcode_name(r->p.h.opcode));
		payload = 0;
		err = -EIO;
	}
	if (payload && !r->in_place)
		fuse_iov_write(r->out, r->nout, sizeof(oh), r->sc->reply, payload);
	oh.len = (uint32_t)(sizeof(oh) + payload);
	oh.error = err;
	oh.unique = r->p.h.unique;
	fuse_iov_write(r->out, r->nout, 0, &oh, sizeof(oh));
	return oh.len;
}

static void count_op(struct fuse_server *s, uint32_t op)
{
	if (op >= FUSE_SERVER_NR_OPCODES)
		op = FUSE_SERVER_NR_OPCODES - 1;
	atomic_fetch_add_explicit(&s->op_count[op], 1, memory_order_relaxed);
}

void fuse_server_op_counts(struct fuse_server *s, uint64_t counts[FUSE_SERVER_NR_OPCODES])
{
	for (unsigned i = 0; i < FUSE_SERVER_NR_OPCODES; i++)
		counts[i] = atomic_load_explicit(&s->op_count[i], memory_order_relaxed);
}

/* @n printable bytes of guest name @name, for a trace line. */
static void printable(char *out, size_t n, const char *name)
{
	size_t i = 0;

	for (; name && name[i] && i + 1 < n; i++)
		out[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
	out[i] = '\0';
}

/* KVMINI_LOG=trace: one line per request (what a workload asks). */
static void trace_request(struct fuse_server *s, const struct fuse_parsed *p, int err)
{
	const char *op = fuse_opcode_name(p->h.opcode);
	char name[64], opnum[24];
	unsigned extra = 0;

	if (!op) {
		snprintf(opnum, sizeof(opnum), "opcode %u", p->h.opcode);
		op = opnum;
	}

	printable(name, sizeof(name), p->name);
	switch (p->h.opcode) {
	case FUSE_SETATTR: extra = p->a.setattr.valid; break;
	case FUSE_OPEN:    extra = p->a.open.flags; break;
	case FUSE_CREATE:  extra = p->a.create.flags; break;
	}
	LOG_TRACE("%s: %s node %llu '%s' 0x%x -> %d", s->name, op,
		  (unsigned long long)p->h.nodeid, name, extra, err);
}

static size_t serve(struct fuse_server *s, struct fs_scratch *sc, const struct iovec *in,
		    unsigned nin, const struct iovec *out, unsigned nout)
{
	struct fs_req r = { .s = s, .in = in, .out = out, .nin = nin, .nout = nout, .sc = sc };
	const char *why;
	int err;

	if (atomic_load(&s->reset_pending)) {
		/* The flag drops only once the forgetting is done, so no
		 * request that sees it clear can overtake it. */
		pthread_mutex_lock(&s->reset_lock);
		if (atomic_load(&s->reset_pending))
			forget_connection(s);
		atomic_store(&s->reset_pending, false);
		pthread_mutex_unlock(&s->reset_lock);
	}
	if (nin > FUSE_SERVER_MAX_IOV || nout > FUSE_SERVER_MAX_IOV) {
		r.p.out_space = 0; /* no reply: we could not even count on it */
		fs_log_guest(s, "request with %u + %u buffers (at most %u each)", nin, nout,
			     FUSE_SERVER_MAX_IOV);
		return 0;
	}
	err = fuse_parse(in, nin, out, nout, sc->parse, sizeof(sc->parse), &r.p, &why);
	if (r.p.have_header)
		count_op(s, r.p.h.opcode);
	if (err) {
		if (err != -ENOSYS)
			fs_log_guest(s, "malformed request (opcode %u): %s", r.p.h.opcode, why);
	} else {
		err = dispatch(&r);
	}
	if (!r.p.have_header)
		return 0;
	if (log_get_level() >= LOG_LEVEL_TRACE)
		trace_request(s, &r.p, err);
	return write_reply(&r, err);
}

size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
			  const struct iovec *out, unsigned nout)
{
	size_t n;

	pthread_mutex_lock(&s->sync_lock);
	n = serve(s, s->sync_scratch, in, nin, out, nout);
	pthread_mutex_unlock(&s->sync_lock);
	return n;
}

static void run_job(void *ctx, struct fs_pool_job *job, void *scratch)
{
	struct fuse_request *req = (struct fuse_request *)job;
	size_t n = serve(ctx, scratch, req->in, req->nin, req->out, req->nout);

	req->done(req, n);
}

void fuse_server_submit(struct fuse_server *s, struct fuse_request *r)
{
	if (!s->pool) {
		r->done(r, fuse_server_handle(s, r->in, r->nin, r->out, r->nout));
		return;
	}
	fs_pool_submit(s->pool, &r->job);
}

unsigned fuse_server_cancel(struct fuse_server *s, void *owner)
{
	return s->pool ? fs_pool_cancel(s->pool, owner) : 0;
}

void fuse_server_reset(struct fuse_server *s)
{
	atomic_store(&s->reset_pending, true);
}

void fuse_server_stats(struct fuse_server *s, struct fuse_server_stats *st)
{
	st->inodes = fs_itab_live(&s->inodes);
	st->max_inodes = s->inodes.cap;
	st->handles = fs_htab_live(&s->handles);
	st->max_handles = s->handles.cap;
}

/* ---- creation ---- */

/* Each worker: its own umask (0: the guest kernel applied the guest's
 * already, since FUSE_DONT_MASK is not offered), so modes arrive exact. */
static int worker_init(void *ctx, struct kv_err *e)
{
	if (unshare(CLONE_FS) < 0)
		return kv_err_set(e, -errno, "unshare(CLONE_FS): %s", strerror(errno));
	umask(0);
	return 0;
}

/* How many fds the tables may hold: RLIMIT_NOFILE minus what is open. */
static unsigned fd_budget(void)
{
	struct rlimit rl;
	unsigned open_fds = 0;
	DIR *d;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT32_MAX;
	d = opendir("/proc/self/fd");
	if (d) {
		while (readdir(d))
			open_fds++;
		closedir(d);
	}
	if (rl.rlim_cur <= (rlim_t)open_fds + FS_FD_RESERVE)
		return 0;
	rl.rlim_cur -= (rlim_t)open_fds + FS_FD_RESERVE;
	return rl.rlim_cur > UINT32_MAX ? UINT32_MAX : (unsigned)rl.rlim_cur;
}

static int size_tables(const struct fuse_server_cfg *cfg, unsigned *inodes, unsigned *handles,
		       struct kv_err *e)
{
	unsigned want_i = cfg->max_inodes ? cfg->max_inodes : FUSE_SERVER_DEFAULT_INODES;
	unsigned want_h = cfg->max_handles ? cfg->max_handles : FUSE_SERVER_DEFAULT_HANDLES;
	unsigned budget = fd_budget();

	if (want_i < 2)
		want_i = 2;
	*inodes = want_i;
	*handles = want_h;
	if ((uint64_t)want_i + want_h <= budget)
		return 0;
	if (budget < 64)
		return kv_err_set(e, -EMFILE, "%s: only %u file descriptors left under "
				  "RLIMIT_NOFILE: raise it (ulimit -n)", cfg->root, budget);
	/* Shrink both in proportion. */
	*handles = (unsigned)((uint64_t)budget * want_h / ((uint64_t)want_i + want_h));
	if (*handles < 16)
		*handles = 16;
	*inodes = budget - *handles;
	LOG_WARN("%s: RLIMIT_NOFILE leaves %u file descriptors: the guest may hold %u inodes "
		 "and %u open files (asked %u and %u); raise the limit (ulimit -n) for more",
		 cfg->root, budget, *inodes, *handles, want_i, want_h);
	return 0;
}

int fuse_server_create(const struct fuse_server_cfg *cfg, struct fuse_server **out,
		       struct kv_err *e)
{
	struct fuse_server *s = calloc(1, sizeof(*s));
	unsigned n_inodes, n_handles;
	struct stat st;
	int root = -1, r;

	if (!s)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", cfg->root);
	snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "virtio-fs");
	s->readonly = cfg->readonly;
	s->cache = cfg->cache;
	s->root_dirfd = -1;
	s->host.proc_fd = -1;
	pthread_mutex_init(&s->state_lock, NULL);
	pthread_mutex_init(&s->reset_lock, NULL);
	pthread_mutex_init(&s->sync_lock, NULL);
	pthread_mutex_init(&s->log_lock, NULL);

	root = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		r = kv_err_set(e, -errno, "%s: %s%s", cfg->root, strerror(errno),
			       errno == ENOTDIR ? ": a share must be a directory" : "");
		goto fail;
	}
	s->root_dirfd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_dirfd < 0 || fs_stat_fd(root, &st) < 0) {
		r = kv_err_set(e, -errno, "%s: cannot open the directory: %s", cfg->root,
			       strerror(errno));
		goto fail;
	}
	s->root_dev = st.st_dev;
	s->root_ino = st.st_ino;
	r = fs_host_probe(&s->host, root, cfg->host_disable);
	if (r < 0) {
		kv_err_set(e, r, "%s: cannot open /proc/self/fd (%s): is /proc mounted?",
			   cfg->root, strerror(-r));
		goto fail;
	}
	r = size_tables(cfg, &n_inodes, &n_handles, e);
	if (r < 0)
		goto fail;
	r = fs_htab_init(&s->handles, n_handles, e);
	if (r < 0)
		goto fail;
	r = fs_itab_init(&s->inodes, n_inodes, root, &st, e);
	if (r < 0)
		goto fail;
	root = -1; /* the table has it */
	s->sync_scratch = calloc(1, sizeof(struct fs_scratch));
	if (!s->sync_scratch) {
		r = kv_err_set(e, -ENOMEM, "%s: out of memory", cfg->root);
		goto fail;
	}
	if (cfg->nr_workers) {
		struct fs_pool_cfg pc = {
			.name = s->name, .nr_workers = cfg->nr_workers,
			.scratch_size = sizeof(struct fs_scratch), .run = run_job, .ctx = s,
			.worker_init = worker_init, .thread_enter = cfg->thread_enter,
			.thread_ctx = cfg->thread_ctx,
		};

		r = fs_pool_create(&pc, &s->pool, e);
		if (r < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	if (root >= 0)
		close(root);
	fuse_server_destroy(s);
	return r;
}

void fuse_server_destroy(struct fuse_server *s)
{
	if (!s)
		return;
	if (s->pool) {
		unsigned dropped = fs_pool_destroy(s->pool);

		if (dropped)
			LOG_DEBUG("%s: %u queued requests dropped at exit", s->name, dropped);
	}
	fs_htab_fini(&s->handles);
	fs_itab_fini(&s->inodes);
	if (s->host.proc_fd >= 0)
		close(s->host.proc_fd);
	if (s->root_dirfd >= 0)
		close(s->root_dirfd);
	free(s->sync_scratch);
	pthread_mutex_destroy(&s->state_lock);
	pthread_mutex_destroy(&s->reset_lock);
	pthread_mutex_destroy(&s->sync_lock);
	pthread_mutex_destroy(&s->log_lock);
	free(s);
}
