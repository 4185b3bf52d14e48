/* FUSE server internals shared by the files of devices/fs/ (and the unit tests):
 * the server struct, one request in progress, the host helpers
 * (host.c) and the operations (ops_*.c). */
#ifndef KVMINI_FS_INTERNAL_H
#define KVMINI_FS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "kvmini/fs_tables.h"
#include "kvmini/fuse_parse.h"
#include "kvmini/fuse_server.h"
#include "kvmini/log.h"

/* The FUSE minor version below which the server refuses INIT: 7.31 is
 * what the first virtio-fs kernel (5.4) speaks. */
#define FS_MIN_MINOR 31
#define FS_REPLY_MAX (128 * 1024 + 4096)  /* READDIR, xattrs, READLINK */
#define FS_FD_RESERVE 64                  /* fds left to the rest of kvmini */

/* What the host kernel offers (probed once). */
struct fs_host {
	int proc_fd;          /* O_PATH of /proc/self/fd */
	bool openat2;         /* Linux 5.6 */
	bool fchmodat2;       /* Linux 6.6: chmod through an O_PATH fd */
	bool faccessat2;      /* Linux 5.8 */
	bool link_empty;      /* linkat(AT_EMPTY_PATH) allowed to us */
};

struct fuse_server {
	char name[32];
	bool readonly;
	enum fuse_cache cache;
	struct fs_host host;
	int root_dirfd;       /* O_RDONLY|O_DIRECTORY of the root: syncfs */
	uint64_t root_dev, root_ino;
	struct fs_inode_table inodes;
	struct fs_handle_table handles;

	/* Connection state (INIT ... DESTROY), under state_lock. */
	pthread_mutex_t state_lock;
	bool initialized;
	uint32_t minor;       /* negotiated */
	uint64_t flags;       /* negotiated FUSE_* init flags */
	atomic_bool reset_pending;  /* fuse_server_reset: forget at the next request */
	pthread_mutex_t reset_lock;

	struct fs_pool *pool;
	pthread_mutex_t sync_lock; /* the scratch of fuse_server_handle */
	void *sync_scratch;

	pthread_mutex_t log_lock;
	struct log_ratelimit rl;

	atomic_uint_least64_t op_count[FUSE_SERVER_NR_OPCODES];
};

/* A worker's buffers (one per thread; never allocated while serving). */
struct fs_scratch {
	uint8_t parse[FUSE_PARSE_BUF_SIZE];
	uint8_t reply[FS_REPLY_MAX];
	struct iovec iov[FUSE_SERVER_MAX_IOV];
};

/* One request being served. */
struct fs_req {
	struct fuse_server *s;
	struct fuse_parsed p;
	const struct iovec *in, *out;
	unsigned nin, nout;
	struct fs_scratch *sc;
	size_t reply_len;     /* payload bytes in sc->reply, or written in place */
	bool in_place;        /* payload already in the writable buffers (READ) */
};

/* The reply payload buffer's room: what the guest's buffers hold after
 * the header, capped by the scratch. */
size_t fs_reply_room(const struct fs_req *r);

/* Rate-limited log line for something the guest did. */
void fs_log_guest(struct fuse_server *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- host.c: system calls on the share ---- */

int fs_host_probe(struct fs_host *h, int root_fd, unsigned disable);
/* fstat of any fd, O_PATH ones included. */
int fs_stat_fd(int fd, struct stat *st);
/* Opens one component @name under directory fd @dirfd as an O_PATH fd,
 * never following a symlink (a symlink is opened itself). */
int fs_open_component(const struct fs_host *h, int dirfd, const char *name);
/* Same with extra open flags and a mode (CREATE's O_CREAT|O_EXCL...). */
int fs_open_component_flags(const struct fs_host *h, int dirfd, const char *name, int flags,
			    mode_t mode);
/* Re-opens the regular file or directory behind O_PATH fd @fd with
 * @flags, through /proc/self/fd (no O_PATH-to-real-fd call exists). */
int fs_reopen(const struct fs_host *h, int fd, int flags);
/* The parent directory of directory @fd, if it is inside the share
 * (root @root_dev/@root_ino): an O_PATH fd, -EACCES if outside. */
int fs_open_parent(const struct fs_host *h, int fd, uint64_t root_dev, uint64_t root_ino);
int fs_chmod(const struct fs_host *h, int fd, mode_t type, mode_t mode);
int fs_access(const struct fs_host *h, int fd, int mask);
int fs_link(const struct fs_host *h, int fd, int newdir, const char *name);
ssize_t fs_getxattr(const struct fs_host *h, int fd, mode_t type, const char *name, void *buf,
		    size_t size);
int fs_setxattr(const struct fs_host *h, int fd, mode_t type, const char *name,
		const void *value, size_t size, int flags);
ssize_t fs_listxattr(const struct fs_host *h, int fd, mode_t type, void *buf, size_t size);
int fs_removexattr(const struct fs_host *h, int fd, mode_t type, const char *name);
/* struct stat -> struct fuse_attr */
void fs_fill_attr(struct fuse_attr *a, const struct stat *st);

/* ---- the operations (ops_*.c): 0 or -errno; the reply payload goes
 * into r->sc->reply (r->reply_len bytes) ---- */

/* Attribute/entry timeout in seconds for the cache mode. */
uint64_t fs_timeout(const struct fuse_server *s);
/* Looks @name up under @parent (a held inode) and fills @e; adds one
 * lookup. "." and ".." included. */
int fs_do_lookup(struct fuse_server *s, const struct fs_iref *parent, const char *name,
		 enum fuse_dot dot, struct fuse_entry_out *e);
/* Takes a reference on the request's nodeid. */
int fs_get_node(struct fs_req *r, struct fs_iref *ref);

int fs_op_lookup(struct fs_req *r);
int fs_op_forget(struct fs_req *r);
int fs_op_batch_forget(struct fs_req *r);
int fs_op_mkdir(struct fs_req *r);
int fs_op_mknod(struct fs_req *r);
int fs_op_symlink(struct fs_req *r);
int fs_op_link(struct fs_req *r);
int fs_op_unlink(struct fs_req *r);
int fs_op_rmdir(struct fs_req *r);
int fs_op_rename(struct fs_req *r);

int fs_op_getattr(struct fs_req *r);
int fs_op_setattr(struct fs_req *r);
int fs_op_readlink(struct fs_req *r);
int fs_op_statfs(struct fs_req *r);
int fs_op_access(struct fs_req *r);
int fs_op_setxattr(struct fs_req *r);
int fs_op_getxattr(struct fs_req *r);
int fs_op_listxattr(struct fs_req *r);
int fs_op_removexattr(struct fs_req *r);

int fs_op_open(struct fs_req *r);
int fs_op_create(struct fs_req *r);
int fs_op_read(struct fs_req *r);
int fs_op_write(struct fs_req *r);
int fs_op_flush(struct fs_req *r);
int fs_op_fsync(struct fs_req *r);
int fs_op_release(struct fs_req *r);
int fs_op_fallocate(struct fs_req *r);
int fs_op_lseek(struct fs_req *r);

int fs_op_opendir(struct fs_req *r);
int fs_op_readdir(struct fs_req *r);
int fs_op_releasedir(struct fs_req *r);
int fs_op_fsyncdir(struct fs_req *r);

#endif
