/* The allow-list of the virtio-fs worker threads (devices/fs/pool.c
 * documents each call and its arguments; tests/unit/devices/fs runs every
 * FUSE operation under the same list). The workers act on the O_PATH fds
 * the server holds for the guest's inodes: no path built from guest input
 * reaches the kernel other than one name component relative to such an
 * fd, with openat2's RESOLVE_BENEATH where the kernel has it. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "seccomp_rules.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE  (1 << 1)
#endif
#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

static struct scmp_arg_cmp eq(unsigned n, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){ .arg = n, .op = SCMP_CMP_EQ, .datum_a = v, .datum_b = 0 };
}

static struct scmp_arg_cmp masked(unsigned n, scmp_datum_t mask, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){ .arg = n, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask, .datum_b = v };
}

/* Calls on fds the server opened itself, any arguments. */
static const int plain[] = {
	SCMP_SYS(close), SCMP_SYS(fstatfs), SCMP_SYS(preadv), SCMP_SYS(pwritev),
	SCMP_SYS(getdents64), SCMP_SYS(mkdirat), SCMP_SYS(symlinkat), SCMP_SYS(readlinkat),
	SCMP_SYS(fchmodat), SCMP_SYS(fchmod), SCMP_SYS(ftruncate), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync), SCMP_SYS(syncfs), SCMP_SYS(faccessat), SCMP_SYS(getxattr),
	SCMP_SYS(listxattr), SCMP_SYS(removexattr),
};

struct one_arg {
	int nr;
	struct scmp_arg_cmp cmp;
};

int seccomp_rules_add_fs(scmp_filter_ctx ctx)
{
	const scmp_datum_t open_mask = O_CREAT | O_EXCL | O_NOFOLLOW;
	const scmp_datum_t falloc = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE;
	const struct one_arg checked[] = {
		/* struct open_how of this kernel ABI: 24 bytes (flags behind the pointer). */
		{ SCMP_SYS(openat2), eq(3, 24) },
		/* Never O_CREAT without O_EXCL|O_NOFOLLOW: no following, no reuse. */
		{ SCMP_SYS(openat), masked(2, open_mask, 0) },
		{ SCMP_SYS(openat), masked(2, open_mask, O_NOFOLLOW) },
		{ SCMP_SYS(openat), masked(2, open_mask, O_CREAT | O_EXCL | O_NOFOLLOW) },
		{ SCMP_SYS(newfstatat), eq(3, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) },
		{ SCMP_SYS(newfstatat), eq(3, AT_EMPTY_PATH) },
		{ SCMP_SYS(lseek), eq(2, SEEK_SET) },
		{ SCMP_SYS(lseek), eq(2, SEEK_DATA) },
		{ SCMP_SYS(lseek), eq(2, SEEK_HOLE) },
		/* Regular files, FIFOs and sockets only: never a device node. */
		{ SCMP_SYS(mknodat), masked(2, S_IFMT, S_IFREG) },
		{ SCMP_SYS(mknodat), masked(2, S_IFMT, S_IFIFO) },
		{ SCMP_SYS(mknodat), masked(2, S_IFMT, S_IFSOCK) },
		{ SCMP_SYS(unlinkat), eq(2, 0) },
		{ SCMP_SYS(unlinkat), eq(2, AT_REMOVEDIR) },
		{ SCMP_SYS(linkat), eq(4, AT_EMPTY_PATH) },
		{ SCMP_SYS(linkat), eq(4, AT_SYMLINK_FOLLOW) },
		{ SCMP_SYS(renameat2), masked(4, ~(scmp_datum_t)(RENAME_NOREPLACE | RENAME_EXCHANGE), 0) },
		{ __NR_fchmodat2, eq(3, AT_EMPTY_PATH) },
		{ SCMP_SYS(fchownat), eq(4, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) },
		{ SCMP_SYS(utimensat), eq(3, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) },
		{ SCMP_SYS(fallocate), masked(1, ~falloc, 0) },
		{ SCMP_SYS(faccessat2), eq(3, AT_EMPTY_PATH | AT_EACCESS) },
		/* setxattr flags 0, XATTR_CREATE or XATTR_REPLACE. */
		{ SCMP_SYS(setxattr), masked(4, ~(scmp_datum_t)3, 0) },
	};
	int r = 0;

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]) && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain[i], 0);
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]) && !r; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, checked[i].nr, 1, checked[i].cmp);
	return r;
}
