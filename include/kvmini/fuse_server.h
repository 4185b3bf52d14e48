/* A FUSE passthrough file server over one host folder (devices/fs/):
 * what a virtio-fs device (devices/virtio/fs.c) serves, knowing nothing
 * of virtio. A request is the bytes the guest wrote (readable iovecs);
 * the reply goes into the writable iovecs, and its length is returned.
 *
 * Confinement (as virtiofsd's passthrough and crosvm's fs device):
 * - every inode the guest knows is an O_PATH fd the server holds
 *   (include/kvmini/fs_tables.h); a lookup is one name component,
 *   opened relative to its parent's fd with openat2(RESOLVE_BENEATH |
 *   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS) where the kernel has
 *   it, O_NOFOLLOW otherwise; a name is never a path (no '/');
 * - the server never follows a symlink for the guest (the guest kernel
 *   resolves links itself, by further LOOKUPs); OPEN of a symlink fails
 *   with ELOOP;
 * - ".." of the root is the root; ".." elsewhere is checked to lead to
 *   a directory inside the share;
 * - no path string built from guest input reaches open(): host calls use
 *   the fds with empty paths (AT_EMPTY_PATH) or one checked component;
 *   where Linux has no fd-based call (re-opening an O_PATH fd for I/O,
 *   truncate without a handle, chmod before 6.6, access before 5.8,
 *   xattrs, linkat without CAP_DAC_READ_SEARCH) the server goes through
 *   /proc/self/fd/N, N being its own fd number, which reaches exactly the
 *   inode that fd pins (devices/fs/host.c says why each); only regular
 *   files and directories are ever re-opened or given xattrs that way;
 * - a server is tied to the process that created it (its /proc/self/fd
 *   fd): do not use it across fork();
 * - read-only shares: every modifying request gets EROFS, files are
 *   opened read-only;
 * - the guest creates no device nodes (MKNOD of a char or block device:
 *   EPERM) and no set-uid/set-gid bits (stripped from every mode the
 *   guest sets: CREATE, MKDIR, MKNOD, SETATTR); whiteouts (RENAME2's
 *   RENAME_WHITEOUT) are refused;
 * - xattrs: read in every namespace, written (set/remove) only in
 *   "user." (others EPERM);
 * - ownership: files the guest creates belong to the user running
 *   kvmini; the guest sees the host's uids and gids unchanged.
 *
 * Limits: at most max_inodes O_PATH fds and max_handles open files;
 * beyond them the request that needs one more gets ENFILE. The server
 * sizes both to what RLIMIT_NOFILE leaves (see fuse_server_create).
 *
 * Threads: with nr_workers > 0 the server owns a pool of worker threads
 * (include/kvmini/fs_pool.h) that run submitted requests and call their
 * done hooks; nothing in them allocates memory. The system calls they
 * make are listed at the top of devices/fs/pool.c. */
#ifndef KVMINI_FUSE_SERVER_H
#define KVMINI_FUSE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/err.h"
#include "kvmini/fs_pool.h"

/* What the guest may cache (--share ...,cache=): attribute and entry
 * timeouts and FOPEN_* flags. */
enum fuse_cache {
	FUSE_CACHE_AUTO,    /* 1 s timeouts; the kernel re-checks mtime */
	FUSE_CACHE_ALWAYS,  /* a day: for shares only this guest changes */
	FUSE_CACHE_NEVER,   /* no caching, direct I/O (no shared mmap in the guest) */
};

/* For tests: pretend the host kernel lacks a feature, to exercise the
 * fallback. */
#define FUSE_HOST_NO_OPENAT2    (1u << 0)
#define FUSE_HOST_NO_FCHMODAT2  (1u << 1)
#define FUSE_HOST_NO_FACCESSAT2 (1u << 2)
#define FUSE_HOST_NO_LINK_EMPTY (1u << 3)

#define FUSE_SERVER_DEFAULT_INODES 65536
#define FUSE_SERVER_DEFAULT_HANDLES 8192
#define FUSE_SERVER_DEFAULT_WORKERS 4
/* The most buffers a request may have on each side. */
#define FUSE_SERVER_MAX_IOV 260
/* The largest WRITE/READ the server announces (max_write, max_pages). */
#define FUSE_SERVER_MAX_IO (1u << 20)

struct fuse_server_cfg {
	const char *root;        /* the host folder shared */
	const char *name;        /* for messages: "virtio-fs0" */
	bool readonly;
	enum fuse_cache cache;
	unsigned max_inodes;     /* 0: FUSE_SERVER_DEFAULT_INODES */
	unsigned max_handles;    /* 0: FUSE_SERVER_DEFAULT_HANDLES */
	unsigned nr_workers;     /* 0: no threads, fuse_server_submit runs inline */
	/* Called first by each worker (the VM's seccomp filter); NULL: none. */
	int (*thread_enter)(void *ctx, struct kv_err *e);
	void *thread_ctx;
	unsigned host_disable;   /* FUSE_HOST_NO_*: tests only */
};

struct fuse_server;

/* Opens @cfg->root (a directory), probes the host kernel, sizes the
 * tables and starts the workers. The tables get what RLIMIT_NOFILE
 * leaves above the fds already open (minus a reserve of 64): when that
 * is less than asked, they shrink (one warning says by how much and how
 * to raise the limit: `ulimit -n`); when it is less than 64 in all,
 * creation fails. */
int fuse_server_create(const struct fuse_server_cfg *cfg, struct fuse_server **out,
		       struct kv_err *e) KV_MUST_CHECK;
/* Stops the workers (queued requests are dropped, not answered) and
 * closes every fd. */
void fuse_server_destroy(struct fuse_server *s);

/* Serves one request on the calling thread and returns the reply's
 * length (0: no reply, for FORGET/BATCH_FORGET/INTERRUPT and for a
 * request with no room for a reply header). Requests may run
 * concurrently on several threads; this one shares one scratch buffer
 * under a lock. */
size_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned nin,
			  const struct iovec *out, unsigned nout);

/* A request handed to the workers: the iovecs must stay valid until
 * @done runs (on a worker thread, or inline without workers). */
struct fuse_request {
	struct fs_pool_job job;   /* job.owner: for fuse_server_cancel */
	const struct iovec *in, *out;
	unsigned nin, nout;
	void (*done)(struct fuse_request *r, size_t reply_len);
};
void fuse_server_submit(struct fuse_server *s, struct fuse_request *r);
/* Drops the queued, not yet started requests of @owner (their @done is
 * not called); returns how many. */
unsigned fuse_server_cancel(struct fuse_server *s, void *owner);

/* The guest's connection is gone (device reset): every inode but the
 * root is forgotten and every handle released before the next request
 * runs, and the next request must be FUSE_INIT. Makes no system call
 * itself (the work happens on the thread of the next request). */
void fuse_server_reset(struct fuse_server *s);

/* What the tables hold now, and their capacity. */
struct fuse_server_stats {
	unsigned inodes, max_inodes;
	unsigned handles, max_handles;
};
void fuse_server_stats(struct fuse_server *s, struct fuse_server_stats *st);

/* Requests with a FUSE header served since the server was made, by
 * opcode (what --report says, to tell requests per operation); an
 * opcode at or past FUSE_SERVER_NR_OPCODES counts in the last slot. */
#define FUSE_SERVER_NR_OPCODES 64
void fuse_server_op_counts(struct fuse_server *s, uint64_t counts[FUSE_SERVER_NR_OPCODES]);

#endif
