/* The FUSE server's two tables (devices/fs/inode_table.c,
 * handle_table.c): what a guest's nodeid and file handle stand for.
 *
 * Inodes. Every inode the guest knows is an O_PATH file descriptor the
 * server holds, found by the host's (st_dev, st_ino), so two names of
 * one file are one nodeid. The guest counts its lookups (every LOOKUP,
 * CREATE, MKDIR, ... reply adds one) and gives them back with FORGET;
 * when the count reaches zero and no request is using the inode, its fd
 * is closed and its slot reused. A nodeid is (generation << 32 | slot +
 * 1): a forgotten nodeid is refused (EBADF), not mistaken for the slot's
 * next tenant. Nodeid 1 (FUSE_ROOT_ID) is the share's root, never freed.
 *
 * File handles. OPEN, CREATE and OPENDIR open a real fd (the guest's
 * fh names it, encoded the same way); RELEASE closes it once no request
 * is using it.
 *
 * Limits. Both tables have a fixed capacity chosen at creation, so a
 * guest that never forgets or never releases cannot make the host run
 * out of fds: when a table is full, the request that needs a new entry
 * fails with ENFILE ("too many open files in system") and the rest goes
 * on; forgetting or releasing frees room again. The arrays are allocated
 * once, up front: a worker thread never allocates.
 *
 * Locking: each table has one mutex, held only for table updates (never
 * across a host system call, except close() when an entry dies). */
#ifndef KVMINI_FS_TABLES_H
#define KVMINI_FS_TABLES_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "kvmini/err.h"

#define FS_NO_SLOT UINT32_MAX

struct fs_inode {
	int fd;             /* O_PATH; -1 when the slot is free */
	uint32_t gen;       /* bumped when the slot is freed */
	uint32_t refs;      /* requests using it right now */
	uint32_t mode;      /* st_mode at lookup (its S_IFMT never changes) */
	uint64_t nlookup;   /* the guest's lookup count */
	uint64_t dev, ino;
	uint32_t hash_next; /* bucket chain */
	uint32_t free_next; /* free list */
};

struct fs_inode_table {
	pthread_mutex_t lock;
	struct fs_inode *slot;
	uint32_t cap, live;
	uint32_t *bucket;   /* nbucket heads (power of two) */
	uint32_t nbucket;
	uint32_t free_head;
};

/* What a request holds while it uses an inode (fd valid until put). */
struct fs_iref {
	uint32_t idx;
	int fd;
	uint32_t mode;
	uint64_t nodeid, dev, ino;
};

/* @cap inodes (>= 2) including the root, whose O_PATH fd @root_fd the
 * table takes over. */
int fs_itab_init(struct fs_inode_table *t, uint32_t cap, int root_fd, const struct stat *root,
		 struct kv_err *e) KV_MUST_CHECK;
/* Closes every fd, the root's too. */
void fs_itab_fini(struct fs_inode_table *t);
/* Takes a reference on @nodeid: 0, or -EBADF for a nodeid that is not
 * (or no longer) known. Release with fs_itab_put. */
int fs_itab_get(struct fs_inode_table *t, uint64_t nodeid, struct fs_iref *ref) KV_MUST_CHECK;
void fs_itab_put(struct fs_inode_table *t, const struct fs_iref *ref);
/* One more lookup of the inode behind @fd (an O_PATH fd the caller
 * opened, described by @st). The table takes @fd: it keeps it for a new
 * inode, closes it when the inode is known already. Returns 0 with
 * *@nodeid, or -ENFILE when the table is full (@fd closed). */
int fs_itab_add_lookup(struct fs_inode_table *t, int fd, const struct stat *st,
		       uint64_t *nodeid) KV_MUST_CHECK;
/* Adds one lookup to an inode the caller holds a reference on (a "."
 * or ".." that resolved to a known inode). */
void fs_itab_ref_lookup(struct fs_inode_table *t, const struct fs_iref *ref);
/* FORGET: drops @n lookups (unknown nodeids and the root are ignored). */
void fs_itab_forget(struct fs_inode_table *t, uint64_t nodeid, uint64_t n);
/* Drops every lookup but the root's (DESTROY, device reset): inodes in
 * use by a request go when it puts them. */
void fs_itab_forget_all(struct fs_inode_table *t);
/* Inodes alive (the root included). */
uint32_t fs_itab_live(struct fs_inode_table *t);

struct fs_handle {
	int fd;
	uint32_t gen;
	uint32_t refs;
	bool live;          /* not yet released */
	bool dir;           /* OPENDIR's: read with getdents64 */
	/* A directory's stream (under lock): entries read from the host
	 * but not yet sent stay in dbuf[dpos, dlen), and dir_at is the
	 * offset the guest continues from when it asks for the rest. */
	bool dir_at_valid;
	uint64_t dir_at;
	uint8_t *dbuf;      /* FS_HTAB_DIRBUF bytes, the table's */
	uint32_t dpos, dlen;
	uint32_t free_next;
	pthread_mutex_t lock; /* a directory's seek + getdents64 */
};

/* Per handle, the directory entries read ahead of the guest: one 4 KiB
 * getdents64 at a time (a Linux guest asks for 4 KiB of entries per
 * READDIR). Reserved for every slot at init, resident only once used. */
#define FS_HTAB_DIRBUF 4096

struct fs_handle_table {
	pthread_mutex_t lock;
	struct fs_handle *slot;
	uint8_t *dirbufs;   /* cap * FS_HTAB_DIRBUF */
	uint32_t cap, live;
	uint32_t free_head;
};

int fs_htab_init(struct fs_handle_table *t, uint32_t cap, struct kv_err *e) KV_MUST_CHECK;
void fs_htab_fini(struct fs_handle_table *t);
/* Takes @fd: 0 with *@fh, or -ENFILE when full (@fd not taken). */
int fs_htab_add(struct fs_handle_table *t, int fd, bool dir, uint64_t *fh) KV_MUST_CHECK;
/* A reference on a live handle: 0, or -EBADF. */
int fs_htab_get(struct fs_handle_table *t, uint64_t fh, struct fs_handle **h) KV_MUST_CHECK;
void fs_htab_put(struct fs_handle_table *t, struct fs_handle *h);
/* RELEASE: 0, or -EBADF for an unknown handle. */
int fs_htab_release(struct fs_handle_table *t, uint64_t fh);
void fs_htab_release_all(struct fs_handle_table *t);
uint32_t fs_htab_live(struct fs_handle_table *t);

#endif
