/* The fuzz_fs target's folders and their checks: see fuzz_fs_tree.h. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_fs_tree.h"

static void must(bool ok, const char *what)
{
	if (!ok) {
		perror(what);
		abort();
	}
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);

	must(fd >= 0 && write(fd, data, strlen(data)) == (ssize_t)strlen(data), path);
	close(fd);
}

static int unlock_dir(const char *p, const struct stat *st, int type, struct FTW *f)
{
	if (type == FTW_D || type == FTW_DNR)
		chmod(p, 0700); /* the input may have chmod'ed 000 */
	return 0;
}

static int remove_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	if (f->level > 0)
		remove(p);
	return 0;
}

void tree_reset_share(struct fs_tree *t)
{
	char p[256];

	chmod(t->share, 0755);
	nftw(t->share, unlock_dir, 16, FTW_PHYS);
	nftw(t->share, remove_one, 16, FTW_PHYS | FTW_DEPTH);
	snprintf(p, sizeof(p), "%s/a", t->share);
	write_file(p, "contents of a\n");
	snprintf(p, sizeof(p), "%s/d", t->share);
	must(mkdir(p, 0755) == 0, p);
	snprintf(p, sizeof(p), "%s/d/e", t->share);
	write_file(p, "e\n");
	snprintf(p, sizeof(p), "%s/out", t->share);
	must(symlink("../canary/secret", p) == 0, p);
	snprintf(p, sizeof(p), "%s/dirlink", t->share);
	must(symlink("../canary/dir", p) == 0, p);
	snprintf(p, sizeof(p), "%s/abs", t->share);
	must(symlink(t->canary, p) == 0, p);
	snprintf(p, sizeof(p), "%s/magic", t->share);
	must(symlink("/proc/self/root", p) == 0, p);
}

/* Everything about the canary tree (and the names beside the share)
 * that an escape could change. */
static void describe(const struct fs_tree *t, const char *rel, char *s, size_t n)
{
	char p[320], buf[256];
	struct stat st;
	size_t l = strlen(s);

	snprintf(p, sizeof(p), "%s/%s", t->top, rel);
	if (lstat(p, &st) < 0) {
		snprintf(s + l, n - l, "%s missing\n", rel);
		return;
	}
	l += (size_t)snprintf(s + l, n - l, "%s %o %lld %lu %u:%u %ld.%ld %ld.%ld", rel,
			      st.st_mode, (long long)st.st_size, (unsigned long)st.st_nlink,
			      st.st_uid, st.st_gid, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			      st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	if (S_ISLNK(st.st_mode)) {
		ssize_t r = readlink(p, buf, sizeof(buf) - 1);

		buf[r < 0 ? 0 : r] = 0;
		l += (size_t)snprintf(s + l, n - l, " -> %s", buf);
	} else if (S_ISREG(st.st_mode)) {
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		buf[r < 0 ? 0 : r] = 0;
		l += (size_t)snprintf(s + l, n - l, " [%s]", buf);
	} else if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(p);
		struct dirent *de;

		while (d && (de = readdir(d)))
			l += (size_t)snprintf(s + l, n - l, " %s", de->d_name);
		if (d)
			closedir(d);
	}
	snprintf(s + l, n - l, "\n");
}

static void canary_snapshot(const struct fs_tree *t, char *s, size_t n)
{
	static const char *const rel[] = { ".", "canary", "canary/secret", "canary/dir",
					   "canary/dir/inner", "canary/link" };

	s[0] = 0;
	for (unsigned i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
		describe(t, rel[i], s, n);
}

unsigned tree_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	must(d != NULL, "/proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static char rm_at_exit[200];

static void remove_tree(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", rm_at_exit,
		 rm_at_exit);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_fs: could not remove %s\n", rm_at_exit);
}

void tree_init(struct fs_tree *t)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char p[256];
	struct stat st;

	snprintf(t->top, sizeof(t->top), "%s/kvmini-fuzz-fs-XXXXXX", base);
	must(mkdtemp(t->top) != NULL, t->top);
	snprintf(rm_at_exit, sizeof(rm_at_exit), "%s", t->top);
	atexit(remove_tree);
	snprintf(t->share, sizeof(t->share), "%s/share", t->top);
	snprintf(t->canary, sizeof(t->canary), "%s/canary", t->top);
	must(mkdir(t->share, 0755) == 0 && mkdir(t->canary, 0755) == 0, t->top);
	snprintf(p, sizeof(p), "%s/secret", t->canary);
	write_file(p, "secret\n");
	snprintf(p, sizeof(p), "%s/link", t->canary);
	must(symlink("secret", p) == 0, p);
	snprintf(p, sizeof(p), "%s/dir", t->canary);
	must(mkdir(p, 0755) == 0, p);
	must(stat(t->share, &st) == 0, t->share);
	t->share_dev = st.st_dev;
	t->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	must(t->ino_fd >= 0, "inotify");
	t->top_wd = inotify_add_watch(t->ino_fd, t->top, IN_ALL_EVENTS);
	must(t->top_wd >= 0 && inotify_add_watch(t->ino_fd, t->canary, IN_ALL_EVENTS) >= 0 &&
	     inotify_add_watch(t->ino_fd, p, IN_ALL_EVENTS) >= 0, "inotify_add_watch");
	snprintf(p, sizeof(p), "%s/dir/inner", t->canary);
	write_file(p, "inner\n");
	canary_snapshot(t, t->canary_state, sizeof(t->canary_state));
}

void tree_check_canary(struct fs_tree *t)
{
	static char now[8192];

	canary_snapshot(t, now, sizeof(now));
	if (strcmp(now, t->canary_state)) {
		fprintf(stderr, "canary changed:\n--- before\n%s--- after\n%s", t->canary_state,
			now);
		FUZZ_CHECK(!"the canary tree changed");
	}
}

/* Checks the inotify events since the last drain: only the share
 * itself may be named (its attributes change, it is opened). */
void tree_events(struct fs_tree *t, bool check)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;

	while ((n = read(t->ino_fd, buf, sizeof(buf))) > 0) {
		for (ssize_t at = 0; at < n;) {
			const struct inotify_event *ev = (const void *)(buf + at);

			if (check && (ev->wd != t->top_wd || !ev->len || strcmp(ev->name, "share"))) {
				fprintf(stderr, "outside the share: inotify mask %#x wd %d name %s\n",
					ev->mask, ev->wd, ev->len ? ev->name : "");
				FUZZ_CHECK(!"an event outside the share");
			}
			at += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
}

/* Every fd the server holds names something under the share. */
void tree_check_fd_inside(struct fs_tree *t, int fd)
{
	char link[64], path[4096];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	FUZZ_CHECK(n > 0);
	path[n] = 0;
	FUZZ_CHECK(fstat(fd, &st) == 0 && st.st_dev == t->share_dev);
	if (strncmp(path, t->share, strlen(t->share)) != 0 ||
	    (path[strlen(t->share)] != 0 && path[strlen(t->share)] != '/')) {
		fprintf(stderr, "server holds fd %d on %s, outside %s\n", fd, path, t->share);
		FUZZ_CHECK(!"an fd outside the share");
	}
}
