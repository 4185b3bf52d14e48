/* FUSE request parsing: see include/kvmini/fuse_parse.h for the rules.
 *
 * Every opcode the server serves has a shape: the size of its fixed
 * argument struct, what follows it (nothing, names, a value, a WRITE
 * payload, forget entries), whether it gets a reply and how small that
 * reply can be. The parser checks a request against its shape on a
 * host copy and nothing else: what the arguments mean (a nodeid, a file
 * handle, an offset) is the server's to check. */
#include <errno.h>
#include <string.h>

#include "kvmini/fuse_parse.h"

/* What follows the fixed arguments. */
enum tail {
	TAIL_NONE,      /* nothing */
	TAIL_NAME,      /* one path component */
	TAIL_NAME2,     /* two components (RENAME, RENAME2) */
	TAIL_SYMLINK,   /* a component, then the link target */
	TAIL_XNAME,     /* an xattr name */
	TAIL_XSET,      /* an xattr name, then setxattr_in.size value bytes */
	TAIL_WRITE,     /* write_in.size payload bytes, left in place */
	TAIL_BATCH,     /* batch_forget_in.count entries, left in place */
};

#define F_NOREPLY 1u
#define F_MODIFIES 2u

struct shape {
	const char *name;
	uint16_t fixed;       /* fixed argument bytes */
	uint8_t tail;
	uint8_t flags;
	uint16_t reply_min;   /* fixed reply bytes after the header */
};

#define SH(op, sz, t, fl, rep) [op] = { &(#op)[5], sz, t, fl, rep } /* "FUSE_LOOKUP" -> "LOOKUP" */

static const struct shape shapes[] = {
	SH(FUSE_LOOKUP, 0, TAIL_NAME, 0, sizeof(struct fuse_entry_out)),
	SH(FUSE_FORGET, sizeof(struct fuse_forget_in), TAIL_NONE, F_NOREPLY, 0),
	SH(FUSE_GETATTR, sizeof(struct fuse_getattr_in), TAIL_NONE, 0, sizeof(struct fuse_attr_out)),
	SH(FUSE_SETATTR, sizeof(struct fuse_setattr_in), TAIL_NONE, F_MODIFIES,
	   sizeof(struct fuse_attr_out)),
	SH(FUSE_READLINK, 0, TAIL_NONE, 0, 0),
	SH(FUSE_SYMLINK, 0, TAIL_SYMLINK, F_MODIFIES, sizeof(struct fuse_entry_out)),
	SH(FUSE_MKNOD, sizeof(struct fuse_mknod_in), TAIL_NAME, F_MODIFIES,
	   sizeof(struct fuse_entry_out)),
	SH(FUSE_MKDIR, sizeof(struct fuse_mkdir_in), TAIL_NAME, F_MODIFIES,
	   sizeof(struct fuse_entry_out)),
	SH(FUSE_UNLINK, 0, TAIL_NAME, F_MODIFIES, 0),
	SH(FUSE_RMDIR, 0, TAIL_NAME, F_MODIFIES, 0),
	SH(FUSE_RENAME, sizeof(struct fuse_rename_in), TAIL_NAME2, F_MODIFIES, 0),
	SH(FUSE_LINK, sizeof(struct fuse_link_in), TAIL_NAME, F_MODIFIES,
	   sizeof(struct fuse_entry_out)),
	SH(FUSE_OPEN, sizeof(struct fuse_open_in), TAIL_NONE, 0, sizeof(struct fuse_open_out)),
	SH(FUSE_READ, sizeof(struct fuse_read_in), TAIL_NONE, 0, 0),
	SH(FUSE_WRITE, sizeof(struct fuse_write_in), TAIL_WRITE, F_MODIFIES,
	   sizeof(struct fuse_write_out)),
	SH(FUSE_STATFS, 0, TAIL_NONE, 0, sizeof(struct fuse_statfs_out)),
	SH(FUSE_RELEASE, sizeof(struct fuse_release_in), TAIL_NONE, 0, 0),
	SH(FUSE_FSYNC, sizeof(struct fuse_fsync_in), TAIL_NONE, 0, 0),
	SH(FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE, TAIL_XSET, F_MODIFIES, 0),
	SH(FUSE_GETXATTR, sizeof(struct fuse_getxattr_in), TAIL_XNAME, 0, 0),
	SH(FUSE_LISTXATTR, sizeof(struct fuse_getxattr_in), TAIL_NONE, 0, 0),
	SH(FUSE_REMOVEXATTR, 0, TAIL_XNAME, F_MODIFIES, 0),
	SH(FUSE_FLUSH, sizeof(struct fuse_flush_in), TAIL_NONE, 0, 0),
	SH(FUSE_INIT, sizeof(struct fuse_init_in), TAIL_NONE, 0, sizeof(struct fuse_init_out)),
	SH(FUSE_OPENDIR, sizeof(struct fuse_open_in), TAIL_NONE, 0, sizeof(struct fuse_open_out)),
	SH(FUSE_READDIR, sizeof(struct fuse_read_in), TAIL_NONE, 0, 0),
	SH(FUSE_RELEASEDIR, sizeof(struct fuse_release_in), TAIL_NONE, 0, 0),
	SH(FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), TAIL_NONE, 0, 0),
	SH(FUSE_ACCESS, sizeof(struct fuse_access_in), TAIL_NONE, 0, 0),
	SH(FUSE_CREATE, sizeof(struct fuse_create_in), TAIL_NAME, F_MODIFIES,
	   sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)),
	SH(FUSE_INTERRUPT, sizeof(struct fuse_interrupt_in), TAIL_NONE, F_NOREPLY, 0),
	SH(FUSE_DESTROY, 0, TAIL_NONE, 0, 0),
	SH(FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), TAIL_BATCH, F_NOREPLY, 0),
	SH(FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), TAIL_NONE, F_MODIFIES, 0),
	SH(FUSE_READDIRPLUS, sizeof(struct fuse_read_in), TAIL_NONE, 0, 0),
	SH(FUSE_RENAME2, sizeof(struct fuse_rename2_in), TAIL_NAME2, F_MODIFIES, 0),
	SH(FUSE_LSEEK, sizeof(struct fuse_lseek_in), TAIL_NONE, 0, sizeof(struct fuse_lseek_out)),
	SH(FUSE_SYNCFS, sizeof(struct fuse_syncfs_in), TAIL_NONE, 0, 0),
};

#define NR_SHAPES (sizeof(shapes) / sizeof(shapes[0]))

static const struct shape *shape_of(uint32_t opcode)
{
	if (opcode >= NR_SHAPES || !shapes[opcode].name)
		return NULL;
	return &shapes[opcode];
}

const char *fuse_opcode_name(uint32_t opcode)
{
	const struct shape *s = shape_of(opcode);

	return s ? s->name : NULL;
}

bool fuse_opcode_modifies(uint32_t opcode)
{
	const struct shape *s = shape_of(opcode);

	return s && (s->flags & F_MODIFIES);
}

/* ---- iovec helpers ---- */

bool fuse_iov_total(const struct iovec *iov, unsigned n, size_t *total)
{
	size_t t = 0;

	for (unsigned i = 0; i < n; i++)
		if (__builtin_add_overflow(t, iov[i].iov_len, &t))
			return false;
	*total = t;
	return true;
}

size_t fuse_iov_read(const struct iovec *iov, unsigned n, size_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len - done ? l - off : len - done;

		memcpy((uint8_t *)dst + done, (const uint8_t *)iov[i].iov_base + off, take);
		done += take;
		off = 0;
	}
	return done;
}

size_t fuse_iov_write(const struct iovec *iov, unsigned n, size_t off, const void *src, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		size_t take = l - off < len - done ? l - off : len - done;

		memcpy((uint8_t *)iov[i].iov_base + off, (const uint8_t *)src + done, take);
		done += take;
		off = 0;
	}
	return done;
}

int fuse_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
		   struct iovec *dst, unsigned cap)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n && len > 0; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		if (k == cap)
			return -1;
		size_t take = l - off < len ? l - off : len;

		dst[k++] = (struct iovec){ (uint8_t *)src[i].iov_base + off, take };
		len -= take;
		off = 0;
	}
	return len ? -1 : (int)k;
}

/* ---- names ---- */

/* A path component of @len bytes at @s followed by its NUL at s[len]. */
static int check_component(const char *s, size_t len, enum fuse_dot *dot, const char **why)
{
	if (len == 0) {
		*why = "empty file name";
		return -EINVAL;
	}
	if (len > FUSE_PARSE_NAME_MAX) {
		*why = "file name longer than 255 bytes";
		return -ENAMETOOLONG;
	}
	if (memchr(s, '/', len)) {
		*why = "file name contains '/'";
		return -EINVAL;
	}
	*dot = FUSE_NAME_PLAIN;
	if (len == 1 && s[0] == '.')
		*dot = FUSE_NAME_DOT;
	else if (len == 2 && s[0] == '.' && s[1] == '.')
		*dot = FUSE_NAME_DOTDOT;
	return 0;
}

/* Splits @n bytes at @s into NUL-terminated strings: the first NUL ends
 * the first one; with @two, the second must end exactly at the last
 * byte, without it the first must. Returns the first string's length. */
static int split_names(const char *s, size_t n, bool two, size_t *len1, size_t *len2,
		       const char **why)
{
	const char *nul = n ? memchr(s, 0, n) : NULL;

	if (!nul) {
		*why = "name not NUL-terminated";
		return -EINVAL;
	}
	*len1 = (size_t)(nul - s);
	if (!two) {
		if (*len1 + 1 != n) {
			*why = "bytes after the name (a NUL inside it, or garbage)";
			return -EINVAL;
		}
		return 0;
	}
	const char *s2 = nul + 1;
	size_t rest = n - *len1 - 1;
	const char *nul2 = rest ? memchr(s2, 0, rest) : NULL;

	if (!nul2) {
		*why = "second name not NUL-terminated";
		return -EINVAL;
	}
	*len2 = (size_t)(nul2 - s2);
	if (*len2 + 1 != rest) {
		*why = "bytes after the second name (a NUL inside it, or garbage)";
		return -EINVAL;
	}
	return 0;
}

/* The largest tail copied whole, per kind (bytes after the fixed args). */
static size_t tail_max(uint8_t tail)
{
	switch (tail) {
	case TAIL_NAME:
	case TAIL_XNAME:
		return FUSE_PARSE_NAME_MAX + 1;
	case TAIL_NAME2:
		return 2 * (FUSE_PARSE_NAME_MAX + 1);
	case TAIL_SYMLINK:
		return FUSE_PARSE_NAME_MAX + 1 + FUSE_PARSE_LINK_MAX + 1;
	case TAIL_XSET:
		return FUSE_PARSE_XATTR_NAME_MAX + 1 + FUSE_PARSE_XATTR_SIZE_MAX;
	default:
		return 0;
	}
}

/* Checks the names/value in @t (@n bytes, a host copy). */
static int parse_tail(struct fuse_parsed *p, uint8_t tail, const char *t, size_t n,
		      const char **why)
{
	size_t l1 = 0, l2 = 0;
	int r;

	switch (tail) {
	case TAIL_NAME:
	case TAIL_NAME2:
		r = split_names(t, n, tail == TAIL_NAME2, &l1, &l2, why);
		if (r)
			return r;
		p->name = t;
		r = check_component(t, l1, &p->dot, why);
		if (r || tail == TAIL_NAME)
			return r;
		p->name2 = t + l1 + 1;
		return check_component(p->name2, l2, &p->dot2, why);
	case TAIL_SYMLINK:
		r = split_names(t, n, true, &l1, &l2, why);
		if (r)
			return r;
		p->name = t;
		p->name2 = t + l1 + 1;
		r = check_component(t, l1, &p->dot, why);
		if (r)
			return r;
		if (l2 == 0) {
			*why = "empty symlink target";
			return -ENOENT;
		}
		if (l2 > FUSE_PARSE_LINK_MAX) {
			*why = "symlink target longer than 4095 bytes";
			return -ENAMETOOLONG;
		}
		return 0;
	case TAIL_XNAME:
		r = split_names(t, n, false, &l1, &l2, why);
		break;
	case TAIL_XSET: {
		uint32_t vlen = p->a.setxattr.size;

		if (vlen > FUSE_PARSE_XATTR_SIZE_MAX) {
			*why = "xattr value larger than 64 KiB";
			return -E2BIG;
		}
		if (n < vlen) {
			*why = "xattr value shorter than setxattr_in.size";
			return -EINVAL;
		}
		r = split_names(t, n - vlen, false, &l1, &l2, why);
		p->value = t + (n - vlen);
		p->value_len = vlen;
		break;
	}
	default:
		return 0;
	}
	if (r)
		return r;
	p->name = t;
	if (l1 == 0 || l1 > FUSE_PARSE_XATTR_NAME_MAX) {
		*why = l1 ? "xattr name longer than 255 bytes" : "empty xattr name";
		return l1 ? -ERANGE : -EINVAL;
	}
	return 0;
}

/* The bulk tails: where they are and that their size matches. */
static int parse_bulk(struct fuse_parsed *p, uint8_t tail, size_t off, size_t n,
		      const char **why)
{
	if (tail == TAIL_WRITE) {
		if (n != p->a.write.size) {
			*why = "WRITE payload length differs from write_in.size";
			return -EINVAL;
		}
	} else if ((uint64_t)p->a.batch_forget.count * sizeof(struct fuse_forget_one) != n) {
		*why = "BATCH_FORGET entries differ from batch_forget_in.count";
		return -EINVAL;
	}
	p->data_off = off;
	p->data_len = n;
	return 0;
}

int fuse_parse(const struct iovec *in, unsigned nin, const struct iovec *out, unsigned nout,
	       void *buf, size_t buf_cap, struct fuse_parsed *p, const char **why)
{
	const size_t hlen = sizeof(struct fuse_in_header);
	const struct shape *sh;
	size_t payload, fixed, rest;

	memset(p, 0, sizeof(*p));
	*why = "";
	if (!fuse_iov_total(in, nin, &p->in_len) || !fuse_iov_total(out, nout, &p->out_space)) {
		*why = "buffer lengths overflow";
		return -EINVAL;
	}
	if (fuse_iov_read(in, nin, 0, &p->h, hlen) != hlen) {
		*why = "request shorter than fuse_in_header";
		return -EINVAL;
	}
	p->have_header = true;
	sh = shape_of(p->h.opcode);
	p->noreply = sh && (sh->flags & F_NOREPLY);
	if (p->h.len != p->in_len) {
		*why = "in_header.len differs from the bytes the request holds";
		return -EINVAL;
	}
	if (!sh) {
		*why = "opcode not served";
		return -ENOSYS;
	}
	if (p->h.total_extlen) {
		*why = "request extension present, none negotiated";
		return -EINVAL;
	}
	if (!p->noreply && p->out_space < sizeof(struct fuse_out_header) + sh->reply_min) {
		*why = "no room for the reply";
		return -EINVAL;
	}
	payload = p->in_len - hlen;
	fixed = sh->fixed;
	if (p->h.opcode == FUSE_INIT) {
		/* Before 7.36 the kernel sent only major, minor, max_readahead
		 * and flags; the rest of our copy stays zero. */
		fixed = payload < sh->fixed ? payload : sh->fixed;
		if (fixed < offsetof(struct fuse_init_in, flags2)) {
			*why = "FUSE_INIT arguments too short";
			return -EINVAL;
		}
	}
	if (payload < fixed) {
		*why = "arguments shorter than the opcode's struct";
		return -EINVAL;
	}
	fuse_iov_read(in, nin, hlen, &p->a, fixed);
	rest = payload - fixed;

	switch (sh->tail) {
	case TAIL_NONE:
		if (rest) {
			*why = "bytes after the opcode's struct";
			return -EINVAL;
		}
		return 0;
	case TAIL_WRITE:
	case TAIL_BATCH:
		return parse_bulk(p, sh->tail, hlen + fixed, rest, why);
	default:
		break;
	}
	if (rest > tail_max(sh->tail)) {
		*why = "names or value too long";
		return sh->tail == TAIL_XSET ? -E2BIG : -ENAMETOOLONG;
	}
	if (rest > buf_cap) {
		*why = "parse buffer too small";
		return -EINVAL;
	}
	fuse_iov_read(in, nin, hlen + fixed, buf, rest);
	return parse_tail(p, sh->tail, buf, rest, why);
}
