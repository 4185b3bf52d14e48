/* The folders of the FUSE server fuzz target (tests/fuzz/fuzz_fs.c) and
 * the parts of its oracle that look at them: a share rebuilt before each
 * input, a canary folder beside it whose state never changes, inotify
 * watches that see any access next to the share, and the check that an
 * fd lies inside the share. */
#ifndef KVMINI_TESTS_FUZZ_FS_TREE_H
#define KVMINI_TESTS_FUZZ_FS_TREE_H

#include <stdbool.h>
#include <sys/types.h>

struct fs_tree {
	char top[128], share[160], canary[160];
	dev_t share_dev;
	int ino_fd, top_wd;
	char canary_state[8192];
};

/* Creates top/{share,canary} under /dev/shm (else /tmp) and the watches. */
void tree_init(struct fs_tree *t);
/* Empties the share and puts back its files, directory and links (into
 * the canary, to /proc/self/root). */
void tree_reset_share(struct fs_tree *t);
/* Reads the inotify events since the last call; with @check, any event
 * but one on the share itself breaks the invariant. */
void tree_events(struct fs_tree *t, bool check);
/* The canary tree is as tree_init left it. */
void tree_check_canary(struct fs_tree *t);
/* @fd (a server's) names something under the share, on its device. */
void tree_check_fd_inside(struct fs_tree *t, int fd);
unsigned tree_count_fds(void);

#endif
