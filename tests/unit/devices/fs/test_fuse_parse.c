/* The FUSE request parser against malformed requests: headers whose
 * length lies, short and long arguments, names with '/', NUL, "..",
 * over-long names and values, bulk tails that disagree with their
 * counts, replies with no room; and the iovec helpers it rests on. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "kvmini/fuse_parse.h"
#include "../../check_main.h"

static uint8_t req[80 * 1024];
static uint8_t reply[4096];
static uint8_t buf[FUSE_PARSE_BUF_SIZE];
static struct fuse_parsed p;
static const char *why;

/* Lays out header + @arg + @tail with in_header.len = real length +
 * @len_delta; returns the length. */
static size_t build(uint32_t op, const void *arg, size_t alen, const void *tail, size_t tlen,
		    int len_delta)
{
	struct fuse_in_header h = { .opcode = op, .unique = 77, .nodeid = 1 };
	size_t len = sizeof(h) + alen + tlen;

	ck_assert_uint_le(len, sizeof(req));
	h.len = (uint32_t)((int)len + len_delta);
	memcpy(req, &h, sizeof(h));
	if (alen)
		memcpy(req + sizeof(h), arg, alen);
	if (tlen)
		memcpy(req + sizeof(h) + alen, tail, tlen);
	return len;
}

static int parse_len(size_t len, size_t room)
{
	struct iovec in = { req, len }, out = { reply, room };

	return fuse_parse(&in, 1, &out, 1, buf, sizeof(buf), &p, &why);
}

static int parse_op(uint32_t op, const void *arg, size_t alen, const void *tail, size_t tlen)
{
	return parse_len(build(op, arg, alen, tail, tlen, 0), sizeof(reply));
}

static int lookup(const char *name, size_t len)
{
	return parse_op(FUSE_LOOKUP, NULL, 0, name, len);
}

START_TEST(header_checks)
{
	struct fuse_getattr_in ga = { 0 };

	/* Shorter than a header: no header, nothing to answer with. */
	ck_assert_int_eq(parse_len(39, sizeof(reply)), -EINVAL);
	ck_assert(!p.have_header);
	/* len says more, or less, than the bytes hold. */
	ck_assert_int_eq(parse_len(build(FUSE_GETATTR, &ga, sizeof(ga), NULL, 0, 1), 4096),
			 -EINVAL);
	ck_assert(p.have_header);
	ck_assert_uint_eq(p.h.unique, 77);
	ck_assert_int_eq(parse_len(build(FUSE_GETATTR, &ga, sizeof(ga), NULL, 0, -1), 4096),
			 -EINVAL);
	ck_assert_int_eq(parse_len(build(FUSE_GETATTR, &ga, sizeof(ga), NULL, 0, -100000), 4096),
			 -EINVAL);
	/* The good one. */
	ck_assert_int_eq(parse_op(FUSE_GETATTR, &ga, sizeof(ga), NULL, 0), 0);
	ck_assert_uint_eq(p.in_len, 56);
	ck_assert_uint_eq(p.out_space, sizeof(reply));
}
END_TEST

START_TEST(unknown_opcodes_and_extensions)
{
	struct fuse_in_header h;

	ck_assert_int_eq(parse_op(FUSE_GETLK, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(parse_op(FUSE_IOCTL, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(parse_op(FUSE_SETUPMAPPING, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(parse_op(0, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(parse_op(4096 /* CUSE_INIT */, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert_int_eq(parse_op(0xffffffffu, NULL, 0, NULL, 0), -ENOSYS);
	ck_assert(p.have_header && !p.noreply);
	/* An extension was never negotiated. */
	build(FUSE_STATFS, NULL, 0, NULL, 0, 0);
	memcpy(&h, req, sizeof(h));
	h.total_extlen = 1;
	memcpy(req, &h, sizeof(h));
	ck_assert_int_eq(parse_len(sizeof(h), sizeof(reply)), -EINVAL);
}
END_TEST

START_TEST(fixed_args_exact)
{
	uint8_t a[128] = { 0 };

	/* One byte short, one byte long, exact. */
	ck_assert_int_eq(parse_op(FUSE_READ, a, sizeof(struct fuse_read_in) - 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_READ, a, sizeof(struct fuse_read_in) + 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_READ, a, sizeof(struct fuse_read_in), NULL, 0), 0);
	ck_assert_int_eq(parse_op(FUSE_STATFS, a, 1, NULL, 0), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_SETATTR, a, 87, NULL, 0), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_FORGET, a, 7, NULL, 0), -EINVAL);
	ck_assert(p.noreply);
	/* INIT: the 16-byte form of older kernels and the full one. */
	ck_assert_int_eq(parse_op(FUSE_INIT, a, 12, NULL, 0), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_INIT, a, 16, NULL, 0), 0);
	ck_assert_int_eq(parse_op(FUSE_INIT, a, 64, NULL, 0), 0);
	ck_assert_int_eq(parse_op(FUSE_INIT, a, 65, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(arguments_are_copied)
{
	struct fuse_read_in r = { .fh = 0x1122, .offset = 4096, .size = 512 };
	struct iovec in[3], out = { reply, sizeof(reply) };
	size_t len = build(FUSE_READ, &r, sizeof(r), NULL, 0, 0);

	/* Split mid-header and mid-arguments. */
	in[0] = (struct iovec){ req, 7 };
	in[1] = (struct iovec){ req + 7, 43 };
	in[2] = (struct iovec){ req + 50, len - 50 };
	ck_assert_int_eq(fuse_parse(in, 3, &out, 1, buf, sizeof(buf), &p, &why), 0);
	/* The guest rewriting its buffer afterwards changes nothing. */
	memset(req, 0xff, len);
	ck_assert_uint_eq(p.h.opcode, FUSE_READ);
	ck_assert_uint_eq(p.a.read.fh, 0x1122);
	ck_assert_uint_eq(p.a.read.offset, 4096);
	ck_assert_uint_eq(p.a.read.size, 512);
}
END_TEST

START_TEST(names)
{
	char n[300];

	ck_assert_int_eq(lookup("a", 2), 0);
	ck_assert_str_eq(p.name, "a");
	ck_assert_int_eq(p.dot, FUSE_NAME_PLAIN);
	ck_assert_int_eq(lookup(".", 2), 0);
	ck_assert_int_eq(p.dot, FUSE_NAME_DOT);
	ck_assert_int_eq(lookup("..", 3), 0);
	ck_assert_int_eq(p.dot, FUSE_NAME_DOTDOT);
	ck_assert_int_eq(lookup("...", 4), 0);
	ck_assert_int_eq(p.dot, FUSE_NAME_PLAIN);
	/* '/', empty, no NUL, a NUL inside, bytes after the NUL. */
	ck_assert_int_eq(lookup("a/b", 4), -EINVAL);
	ck_assert_int_eq(lookup("/", 2), -EINVAL);
	ck_assert_int_eq(lookup("../etc", 7), -EINVAL);
	ck_assert_int_eq(lookup("", 1), -EINVAL);
	ck_assert_int_eq(lookup("abc", 3), -EINVAL);
	ck_assert_int_eq(lookup("ab\0c", 5), -EINVAL);
	ck_assert_int_eq(lookup("..\0x", 5), -EINVAL);
	ck_assert_int_eq(lookup(NULL, 0), -EINVAL);
	/* 255 bytes is the longest. */
	memset(n, 'x', sizeof(n));
	n[255] = 0;
	ck_assert_int_eq(lookup(n, 256), 0);
	ck_assert_uint_eq(strlen(p.name), 255);
	n[255] = 'x';
	n[256] = 0;
	ck_assert_int_eq(lookup(n, 257), -ENAMETOOLONG);
	n[299] = 0;
	ck_assert_int_eq(lookup(n, 300), -ENAMETOOLONG);
	/* High bytes are fine (UTF-8 names). */
	ck_assert_int_eq(lookup("\xc3\xa9t\xc3\xa9", 6), 0);
}
END_TEST

START_TEST(two_names)
{
	struct fuse_rename_in rn = { .newdir = 1 };
	struct fuse_mkdir_in mk = { .mode = 0755 };

	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0b", 4), 0);
	ck_assert_str_eq(p.name, "a");
	ck_assert_str_eq(p.name2, "b");
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0b/c", 6), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a/x\0b", 6), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0b", 3), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0\0", 3), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0b\0c", 6), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_RENAME, &rn, sizeof(rn), "a\0..", 5), 0);
	ck_assert_int_eq(p.dot2, FUSE_NAME_DOTDOT);
	/* SYMLINK: a component, then a target that may hold '/'. */
	ck_assert_int_eq(parse_op(FUSE_SYMLINK, NULL, 0, "l\0/etc/passwd", 14), 0);
	ck_assert_str_eq(p.name2, "/etc/passwd");
	ck_assert_int_eq(parse_op(FUSE_SYMLINK, NULL, 0, "l/m\0x", 6), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_SYMLINK, NULL, 0, "l\0", 3), -ENOENT);
	/* MKDIR's name follows its struct. */
	ck_assert_int_eq(parse_op(FUSE_MKDIR, &mk, sizeof(mk), "d", 2), 0);
	ck_assert_uint_eq(p.a.mkdir.mode, 0755);
	ck_assert_int_eq(parse_op(FUSE_MKDIR, &mk, sizeof(mk), NULL, 0), -EINVAL);
}
END_TEST

START_TEST(long_tails)
{
	static char t[6000];

	/* A symlink target up to 4095 bytes. */
	memset(t, 'y', sizeof(t));
	t[0] = 'l';
	t[1] = 0;
	t[2 + 4095] = 0;
	ck_assert_int_eq(parse_op(FUSE_SYMLINK, NULL, 0, t, 2 + 4096), 0);
	ck_assert_uint_eq(strlen(p.name2), 4095);
	t[2 + 4095] = 'y';
	t[2 + 4096] = 0;
	ck_assert_int_eq(parse_op(FUSE_SYMLINK, NULL, 0, t, 2 + 4097), -ENAMETOOLONG);
	/* Two long names do not slip through as one. */
	memset(t, 'z', 600);
	t[599] = 0;
	ck_assert_int_eq(parse_op(FUSE_UNLINK, NULL, 0, t, 600), -ENAMETOOLONG);
}
END_TEST

START_TEST(xattrs)
{
	static uint8_t t[70000];
	struct fuse_setxattr_in sx = { .size = 3 };
	struct fuse_getxattr_in gx = { .size = 100 };

	memcpy(t, "user.a\0val", 10);
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 10), 0);
	ck_assert_str_eq(p.name, "user.a");
	ck_assert_uint_eq(p.value_len, 3);
	ck_assert_mem_eq(p.value, "val", 3);
	/* The value's size disagrees with the bytes. */
	sx.size = 4;
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 10), -EINVAL);
	sx.size = 2;
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 10), -EINVAL);
	/* A value may hold NULs; the name may not be empty. */
	sx.size = 3;
	memcpy(t, "user.b\0\0\0\0", 10);
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 10), 0);
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, "\0abc", 4), -EINVAL);
	/* 64 KiB values at most. */
	memcpy(t, "user.c", 7);
	sx.size = 65536;
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 7 + 65536), 0);
	sx.size = 65537;
	ck_assert_int_eq(parse_op(FUSE_SETXATTR, &sx, 8, t, 7 + 65537), -E2BIG);
	/* GETXATTR: a name up to 255 bytes. */
	ck_assert_int_eq(parse_op(FUSE_GETXATTR, &gx, sizeof(gx), "user.x", 7), 0);
	memset(t, 'n', 300);
	t[256] = 0;
	ck_assert_int_eq(parse_op(FUSE_GETXATTR, &gx, sizeof(gx), t, 257), -ENAMETOOLONG);
	ck_assert_int_eq(parse_op(FUSE_REMOVEXATTR, NULL, 0, "user.x", 7), 0);
	ck_assert_int_eq(parse_op(FUSE_LISTXATTR, &gx, sizeof(gx), "x", 2), -EINVAL);
}
END_TEST

START_TEST(bulk_tails)
{
	static uint8_t t[4096];
	struct fuse_write_in w = { .size = 100 };
	struct fuse_batch_forget_in bf = { .count = 3 };

	ck_assert_int_eq(parse_op(FUSE_WRITE, &w, sizeof(w), t, 100), 0);
	ck_assert_uint_eq(p.data_off, 40 + sizeof(w));
	ck_assert_uint_eq(p.data_len, 100);
	ck_assert_int_eq(parse_op(FUSE_WRITE, &w, sizeof(w), t, 99), -EINVAL);
	ck_assert_int_eq(parse_op(FUSE_WRITE, &w, sizeof(w), t, 101), -EINVAL);
	w.size = 0;
	ck_assert_int_eq(parse_op(FUSE_WRITE, &w, sizeof(w), NULL, 0), 0);
	/* count * 16 bytes exactly; no overflow with a huge count. */
	ck_assert_int_eq(parse_op(FUSE_BATCH_FORGET, &bf, sizeof(bf), t, 48), 0);
	ck_assert(p.noreply);
	ck_assert_uint_eq(p.data_len, 48);
	ck_assert_int_eq(parse_op(FUSE_BATCH_FORGET, &bf, sizeof(bf), t, 47), -EINVAL);
	bf.count = 0x10000001u; /* * 16 wraps in 32 bits to 16 */
	ck_assert_int_eq(parse_op(FUSE_BATCH_FORGET, &bf, sizeof(bf), t, 16), -EINVAL);
	bf.count = 0;
	ck_assert_int_eq(parse_op(FUSE_BATCH_FORGET, &bf, sizeof(bf), NULL, 0), 0);
}
END_TEST

START_TEST(reply_room)
{
	struct fuse_getattr_in ga = { 0 };
	size_t len = build(FUSE_GETATTR, &ga, sizeof(ga), NULL, 0, 0);

	ck_assert_int_eq(parse_len(len, 16 + sizeof(struct fuse_attr_out)), 0);
	ck_assert_int_eq(parse_len(len, 16 + sizeof(struct fuse_attr_out) - 1), -EINVAL);
	ck_assert_int_eq(parse_len(len, 0), -EINVAL);
	ck_assert(p.have_header);
	/* A FORGET needs no room at all. */
	ck_assert_int_eq(parse_len(build(FUSE_FORGET, &ga, 8, NULL, 0, 0), 0), 0);
	/* Variable-size replies need only the header. */
	ck_assert_int_eq(parse_len(build(FUSE_READLINK, NULL, 0, NULL, 0, 0), 16), 0);
}
END_TEST

START_TEST(iov_helpers)
{
	uint8_t a[10], b[5], out[15];
	struct iovec v[2] = { { a, 10 }, { b, 5 } }, s[2];
	size_t total;

	for (int i = 0; i < 10; i++)
		a[i] = (uint8_t)i;
	for (int i = 0; i < 5; i++)
		b[i] = (uint8_t)(10 + i);
	ck_assert(fuse_iov_total(v, 2, &total));
	ck_assert_uint_eq(total, 15);
	ck_assert_uint_eq(fuse_iov_read(v, 2, 8, out, 15), 7);
	ck_assert_uint_eq(out[0], 8);
	ck_assert_uint_eq(out[6], 14);
	ck_assert_int_eq(fuse_iov_slice(v, 2, 8, 4, s, 2), 2);
	ck_assert_ptr_eq(s[0].iov_base, a + 8);
	ck_assert_uint_eq(s[0].iov_len, 2);
	ck_assert_uint_eq(s[1].iov_len, 2);
	ck_assert_int_eq(fuse_iov_slice(v, 2, 8, 4, s, 1), -1);
	ck_assert_int_eq(fuse_iov_slice(v, 2, 8, 8, s, 2), -1);
	ck_assert_int_eq(fuse_iov_slice(v, 2, 15, 0, s, 2), 0);
	v[1].iov_len = SIZE_MAX;
	ck_assert(!fuse_iov_total(v, 2, &total));
	ck_assert_str_eq(fuse_opcode_name(FUSE_READDIRPLUS), "READDIRPLUS");
	ck_assert_ptr_null(fuse_opcode_name(FUSE_GETLK));
	ck_assert(fuse_opcode_modifies(FUSE_WRITE));
	ck_assert(!fuse_opcode_modifies(FUSE_READ));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fuse_parse");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, header_checks);
	tcase_add_test(tc, unknown_opcodes_and_extensions);
	tcase_add_test(tc, fixed_args_exact);
	tcase_add_test(tc, arguments_are_copied);
	tcase_add_test(tc, names);
	tcase_add_test(tc, two_names);
	tcase_add_test(tc, long_tails);
	tcase_add_test(tc, xattrs);
	tcase_add_test(tc, bulk_tails);
	tcase_add_test(tc, reply_room);
	tcase_add_test(tc, iov_helpers);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
