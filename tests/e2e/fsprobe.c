/* fsprobe: the few file-system calls the e2e share cases need and
 * busybox lacks, as one static program that runs both in the nested L1
 * (the host side of a share) and in the guest (from the share itself).
 *
 *   fsprobe set FILE NAME VALUE     setxattr, then prints nothing
 *   fsprobe get FILE NAME           prints the value
 *   fsprobe list FILE               prints the names, one per line
 *   fsprobe remove FILE NAME        removexattr
 *   fsprobe exchange A B N USEC     renameat2(RENAME_EXCHANGE) of A and B,
 *                                   N times, USEC microseconds apart (a
 *                                   symlink swapped in and out)
 *   fsprobe race FILE N MARK        opens and reads FILE N times; prints
 *                                   "RACE ok=.. missing=.. other=.. mark=.."
 *                                   where mark counts reads that held MARK
 *
 * Exit status 0, or 1 with "fsprobe: CALL: error" on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static int failed(const char *call, const char *path)
{
	fprintf(stderr, "fsprobe: %s %s: %s\n", call, path, strerror(errno));
	return 1;
}

static int cmd_get(const char *file, const char *name)
{
	char v[4096];
	ssize_t n = getxattr(file, name, v, sizeof(v) - 1);

	if (n < 0)
		return failed("getxattr", file);
	v[n] = 0;
	printf("%s\n", v);
	return 0;
}

static int cmd_list(const char *file)
{
	char names[8192];
	ssize_t n = listxattr(file, names, sizeof(names));

	if (n < 0)
		return failed("listxattr", file);
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1)
		printf("%s\n", names + off);
	return 0;
}

static int cmd_exchange(const char *a, const char *b, long times, long usec)
{
	for (long i = 0; i < times; i++) {
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) < 0)
			return failed("renameat2", a);
		if (usec > 0)
			usleep((useconds_t)usec);
	}
	return 0;
}

static int cmd_race(const char *file, long times, const char *mark)
{
	long ok = 0, missing = 0, other = 0, marked = 0;
	char buf[256];

	for (long i = 0; i < times; i++) {
		int fd = open(file, O_RDONLY);
		ssize_t n;

		if (fd < 0) {
			if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
				missing++;
			else
				other++;
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n < 0) {
			other++;
			continue;
		}
		buf[n] = 0;
		if (strstr(buf, mark))
			marked++;
		else
			ok++;
	}
	printf("RACE ok=%ld missing=%ld other=%ld mark=%ld\n", ok, missing, other, marked);
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";

	if (!strcmp(c, "set") && argc == 5)
		return setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0) < 0 ?
		       failed("setxattr", argv[2]) : 0;
	if (!strcmp(c, "get") && argc == 4)
		return cmd_get(argv[2], argv[3]);
	if (!strcmp(c, "list") && argc == 3)
		return cmd_list(argv[2]);
	if (!strcmp(c, "remove") && argc == 4)
		return removexattr(argv[2], argv[3]) < 0 ? failed("removexattr", argv[2]) : 0;
	if (!strcmp(c, "exchange") && argc == 6)
		return cmd_exchange(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (!strcmp(c, "race") && argc == 5)
		return cmd_race(argv[2], atol(argv[3]), argv[4]);
	fprintf(stderr, "usage: fsprobe set|get|list|remove|exchange|race ... (see fsprobe.c)\n");
	return 2;
}
