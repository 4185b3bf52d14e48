/* FUSE request parsing (devices/fs/fuse_parse.c): parse, then act
 * (STYLE.md habit 3). A request arrives as the bytes the guest wrote (a
 * list of readable buffers in guest memory, which another vCPU may be
 * rewriting while we look). fuse_parse copies the header, the fixed
 * arguments and every name into host memory once, checks them on the
 * copy, and tells the caller where the bulk data (a WRITE's payload, a
 * BATCH_FORGET's entries) lies; the operations never read a header
 * field from guest memory again.
 *
 * What is checked, for every request:
 * - the readable bytes hold a whole fuse_in_header and its len field
 *   equals their total exactly (no more, no less);
 * - no request extension (total_extlen): none is ever negotiated;
 * - the opcode is one the server serves (else ENOSYS);
 * - the argument bytes hold exactly the opcode's fixed struct and its
 *   tail: names NUL-terminated where the next one starts, a WRITE's
 *   payload exactly write_in.size bytes, a SETXATTR value exactly
 *   setxattr_in.size bytes, BATCH_FORGET exactly count entries;
 * - a file name is 1..255 bytes, has no '/' and no NUL (the first NUL
 *   ends it, and must be where the protocol says the name ends); "."
 *   and ".." are reported (dot/dot2) for the server to handle; a symlink
 *   target is 1..4095 bytes; an xattr name 1..255 bytes; an xattr value
 *   at most 64 KiB;
 * - the writable bytes have room for the reply header and the opcode's
 *   fixed reply (replies of variable size are bounded by the server).
 * A failed check returns -errno for the reply (EINVAL, ENAMETOOLONG,
 * E2BIG, ENOSYS) and a reason string for the rate-limited log. */
#ifndef KVMINI_FUSE_PARSE_H
#define KVMINI_FUSE_PARSE_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FUSE_PARSE_NAME_MAX 255          /* NAME_MAX */
#define FUSE_PARSE_LINK_MAX 4095         /* a symlink target: PATH_MAX - 1 */
#define FUSE_PARSE_XATTR_NAME_MAX 255    /* XATTR_NAME_MAX */
#define FUSE_PARSE_XATTR_SIZE_MAX 65536  /* XATTR_SIZE_MAX */
/* The caller's copy buffer: the largest request copied whole is a
 * SETXATTR (fixed args, name, 64 KiB value). */
#define FUSE_PARSE_BUF_SIZE (72 * 1024)

/* What a name turned out to be. */
enum fuse_dot { FUSE_NAME_PLAIN, FUSE_NAME_DOT, FUSE_NAME_DOTDOT };

/* The fixed-size part of every request the server serves. */
union fuse_args {
	struct fuse_init_in init;
	struct fuse_forget_in forget;
	struct fuse_batch_forget_in batch_forget;
	struct fuse_getattr_in getattr;
	struct fuse_setattr_in setattr;
	struct fuse_mknod_in mknod;
	struct fuse_mkdir_in mkdir;
	struct fuse_rename_in rename;
	struct fuse_rename2_in rename2;
	struct fuse_link_in link;
	struct fuse_open_in open;
	struct fuse_create_in create;
	struct fuse_read_in read;
	struct fuse_write_in write;
	struct fuse_release_in release;
	struct fuse_flush_in flush;
	struct fuse_fsync_in fsync;
	struct fuse_setxattr_in setxattr; /* the 8-byte form: no FUSE_SETXATTR_EXT */
	struct fuse_getxattr_in getxattr;
	struct fuse_access_in access;
	struct fuse_interrupt_in interrupt;
	struct fuse_fallocate_in fallocate;
	struct fuse_lseek_in lseek;
	struct fuse_syncfs_in syncfs;
};

struct fuse_parsed {
	struct fuse_in_header h;  /* copied; h.len equals the readable total */
	bool have_header;         /* h.unique can be echoed in a reply */
	bool noreply;             /* FORGET, BATCH_FORGET, INTERRUPT: no reply */
	size_t in_len;            /* readable bytes */
	size_t out_space;         /* writable bytes */
	union fuse_args a;        /* the opcode's fixed arguments (zero-padded) */
	const char *name;         /* first name, in the caller's buffer, or NULL */
	const char *name2;        /* RENAME's new name, SYMLINK's target, or NULL */
	enum fuse_dot dot, dot2;  /* "." / ".." (component names only) */
	const void *value;        /* SETXATTR's value, in the caller's buffer */
	uint32_t value_len;
	/* WRITE: the payload; BATCH_FORGET: the entries. Offsets within the
	 * readable bytes, left in guest memory (never re-validated: they
	 * are data). */
	size_t data_off, data_len;
};

/* Parses one request. @buf (at least FUSE_PARSE_BUF_SIZE bytes) receives
 * the names and values @p points to. Returns 0, or -errno to answer
 * with; @why then names the rule broken (a static string). p->h and
 * p->have_header are set as soon as a whole header was readable, so even
 * a refused request can be answered. */
int fuse_parse(const struct iovec *in, unsigned nin, const struct iovec *out, unsigned nout,
	       void *buf, size_t buf_cap, struct fuse_parsed *p, const char **why);

/* "LOOKUP", "WRITE", ... or NULL for an opcode the server does not serve. */
const char *fuse_opcode_name(uint32_t opcode);
/* True for opcodes that change the share (refused with EROFS when it is
 * read-only). OPEN decides from its flags at run time. */
bool fuse_opcode_modifies(uint32_t opcode);

/* Byte copies over an iovec list, from byte @off; return bytes copied
 * (short when the list ends). */
size_t fuse_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len);
size_t fuse_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len);
/* The iovecs covering bytes [off, off+len) of @src into @dst (capacity
 * @cap); returns how many, or -1 when they do not fit or the range is
 * past the end. */
int fuse_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		   struct iovec *dst, unsigned cap);
/* Total bytes of an iovec list; false on overflow. */
bool fuse_iov_total(const struct iovec *iov, unsigned n, size_t *total);

#endif
