/* A test-side FUSE client: builds requests the way Linux's virtio-fs
 * driver lays them out (header, arguments, names; a writable reply
 * buffer), sends them to a server through fuse_server_handle and checks
 * every reply's header (length within the buffer, the request's unique,
 * an error only with an empty payload) before handing back the error
 * and the payload. Also: temporary folders, and counting open fds. */
#ifndef KVMINI_TEST_FUSE_CLIENT_H
#define KVMINI_TEST_FUSE_CLIENT_H

#include <check.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/fuse_server.h"

#define FC_REPLY_MAX (256 * 1024)

struct fc {
	struct fuse_server *s;
	uint64_t unique;
	unsigned split;         /* >0: cut the request and reply into pieces of this size */
	bool via_workers;       /* send through fuse_server_submit and wait for done */
	uint8_t reply[FC_REPLY_MAX + sizeof(struct fuse_out_header)] __attribute__((aligned(8)));
	size_t reply_len;       /* payload bytes of the last reply */
};

/* A fresh folder under /tmp (mkdtemp); fc_rmrf removes it. */
void fc_tmpdir(char *buf, size_t n, const char *tag);
void fc_rmrf(const char *path);
/* Open fds of this process. */
unsigned fc_count_fds(void);

/* Creates a server on @root with @cfg's other fields (root/name set
 * here) and sends FUSE_INIT. */
void fc_start(struct fc *c, const char *root, const struct fuse_server_cfg *cfg);
void fc_stop(struct fc *c);

/* Sends one request: @arg (fixed arguments), then @n_tails NUL-less
 * byte blocks @tails (names are passed with their NUL), with @room
 * writable payload bytes after the header. Returns the reply's error
 * (0 or -errno); the payload is at c->reply + sizeof(out header).
 * Requests with no reply (FORGET...) return 1 and check none came. */
int fc_call(struct fc *c, uint32_t op, uint64_t nodeid, const void *arg, size_t arg_len,
	    const void *tail, size_t tail_len, size_t room);
static inline void *fc_payload(struct fc *c)
{
	return c->reply + sizeof(struct fuse_out_header);
}

/* Convenience wrappers (assert nothing; return the error). */
int fc_lookup(struct fc *c, uint64_t parent, const char *name, struct fuse_entry_out *e);
int fc_getattr(struct fc *c, uint64_t node, struct fuse_attr *a);
int fc_mkdir(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e);
int fc_create(struct fc *c, uint64_t parent, const char *name, uint32_t flags, uint32_t mode,
	      struct fuse_entry_out *e, uint64_t *fh);
int fc_open(struct fc *c, uint64_t node, uint32_t flags, uint64_t *fh);
int fc_opendir(struct fc *c, uint64_t node, uint64_t *fh);
int fc_release(struct fc *c, uint64_t node, uint64_t fh);
/* Returns bytes read (>= 0) or -errno. */
int fc_read(struct fc *c, uint64_t node, uint64_t fh, uint64_t off, void *buf, uint32_t size);
/* Returns bytes written (>= 0) or -errno. */
int fc_write(struct fc *c, uint64_t node, uint64_t fh, uint64_t off, const void *buf,
	     uint32_t size);
int fc_unlink(struct fc *c, uint64_t parent, const char *name);
int fc_rmdir(struct fc *c, uint64_t parent, const char *name);
int fc_rename(struct fc *c, uint64_t dir, const char *from, uint64_t newdir, const char *to,
	      uint32_t flags);
int fc_symlink(struct fc *c, uint64_t parent, const char *name, const char *target,
	       struct fuse_entry_out *e);
int fc_link(struct fc *c, uint64_t node, uint64_t newparent, const char *name,
	    struct fuse_entry_out *e);
int fc_mknod(struct fc *c, uint64_t parent, const char *name, uint32_t mode,
	     struct fuse_entry_out *e);
int fc_setattr(struct fc *c, uint64_t node, const struct fuse_setattr_in *in,
	       struct fuse_attr *a);
int fc_readlink(struct fc *c, uint64_t node, char *buf, size_t n);
int fc_setxattr(struct fc *c, uint64_t node, const char *name, const void *v, uint32_t len,
		uint32_t flags);
/* Returns the value length (>= 0) or -errno; size 0 asks for the size. */
int fc_getxattr(struct fc *c, uint64_t node, const char *name, void *buf, uint32_t size);
void fc_forget(struct fc *c, uint64_t node, uint64_t n);
/* READDIR(PLUS) from @off: the names (joined by '\n' into @names) and
 * the count; 0 entries at the end. Returns entries or -errno. */
int fc_readdir(struct fc *c, uint64_t node, uint64_t fh, bool plus, uint64_t off,
	       char *names, size_t n, uint64_t *next_off);

#endif
