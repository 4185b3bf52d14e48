/* The inode table: see include/kvmini/fs_tables.h.
 *
 * Slots live in one array allocated at creation; free slots form a
 * list; live ones are chained in a hash of (dev, ino). A slot dies when
 * both its lookup count and its request references are zero: the fd is
 * taken out under the lock and closed after it. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvmini/fs_tables.h"

#define ROOT_IDX 0

static uint32_t hash_of(const struct fs_inode_table *t, uint64_t dev, uint64_t ino)
{
	uint64_t h = ino * 0x9e3779b97f4a7c15ull ^ dev * 0xc2b2ae3d27d4eb4full;

	return (uint32_t)(h >> 32) & (t->nbucket - 1);
}

static uint64_t nodeid_of(const struct fs_inode_table *t, uint32_t idx)
{
	return (uint64_t)t->slot[idx].gen << 32 | (idx + 1);
}

/* The live slot @nodeid names, or FS_NO_SLOT. Lock held. */
static uint32_t slot_of(const struct fs_inode_table *t, uint64_t nodeid)
{
	uint32_t low = (uint32_t)nodeid;

	if (low == 0 || low > t->cap)
		return FS_NO_SLOT;
	uint32_t idx = low - 1;
	const struct fs_inode *in = &t->slot[idx];

	if (in->fd < 0 || in->gen != (uint32_t)(nodeid >> 32))
		return FS_NO_SLOT;
	if (in->nlookup == 0 && idx != ROOT_IDX)
		return FS_NO_SLOT; /* forgotten, only a request still holds it */
	return idx;
}

int fs_itab_init(struct fs_inode_table *t, uint32_t cap, int root_fd, const struct stat *root,
		 struct kv_err *e)
{
	uint32_t nb = 16;

	if (cap < 2)
		return kv_err_set(e, -EINVAL, "inode table: capacity %u is too small", cap);
	while (nb < cap && nb < (1u << 30))
		nb <<= 1;
	t->slot = calloc(cap, sizeof(*t->slot));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->slot || !t->bucket) {
		free(t->slot);
		free(t->bucket);
		return kv_err_set(e, -ENOMEM, "inode table: out of memory for %u inodes", cap);
	}
	t->cap = cap;
	t->nbucket = nb;
	for (uint32_t i = 0; i < nb; i++)
		t->bucket[i] = FS_NO_SLOT;
	/* Free list in index order, the root's slot excluded. */
	for (uint32_t i = 0; i < cap; i++) {
		t->slot[i].fd = -1;
		t->slot[i].gen = 1;
		t->slot[i].free_next = i + 1 < cap ? i + 1 : FS_NO_SLOT;
	}
	t->free_head = 1;
	struct fs_inode *r = &t->slot[ROOT_IDX];

	r->fd = root_fd;
	r->gen = 0; /* nodeid 1 == FUSE_ROOT_ID */
	r->nlookup = 1;
	r->mode = root->st_mode;
	r->dev = root->st_dev;
	r->ino = root->st_ino;
	r->hash_next = FS_NO_SLOT;
	t->bucket[hash_of(t, r->dev, r->ino)] = ROOT_IDX;
	t->live = 1;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void fs_itab_fini(struct fs_inode_table *t)
{
	if (!t->slot)
		return;
	for (uint32_t i = 0; i < t->cap; i++)
		if (t->slot[i].fd >= 0)
			close(t->slot[i].fd);
	free(t->slot);
	free(t->bucket);
	t->slot = NULL;
	t->bucket = NULL;
	pthread_mutex_destroy(&t->lock);
}

static void unhash(struct fs_inode_table *t, uint32_t idx)
{
	struct fs_inode *in = &t->slot[idx];
	uint32_t *link = &t->bucket[hash_of(t, in->dev, in->ino)];

	while (*link != FS_NO_SLOT && *link != idx)
		link = &t->slot[*link].hash_next;
	if (*link == idx)
		*link = in->hash_next;
}

/* Frees @idx if nothing holds it; returns the fd to close or -1. Lock held. */
static int maybe_free(struct fs_inode_table *t, uint32_t idx)
{
	struct fs_inode *in = &t->slot[idx];
	int fd = in->fd;

	if (idx == ROOT_IDX || in->nlookup || in->refs || fd < 0)
		return -1;
	unhash(t, idx);
	in->fd = -1;
	in->gen++;
	if (in->gen == 0)
		in->gen = 1; /* generation 0 is the root's */
	in->free_next = t->free_head;
	t->free_head = idx;
	t->live--;
	return fd;
}

int fs_itab_get(struct fs_inode_table *t, uint64_t nodeid, struct fs_iref *ref)
{
	pthread_mutex_lock(&t->lock);
	uint32_t idx = slot_of(t, nodeid);

	if (idx == FS_NO_SLOT) {
		pthread_mutex_unlock(&t->lock);
		return -EBADF;
	}
	struct fs_inode *in = &t->slot[idx];

	in->refs++;
	*ref = (struct fs_iref){ idx, in->fd, in->mode, nodeid, in->dev, in->ino };
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void fs_itab_put(struct fs_inode_table *t, const struct fs_iref *ref)
{
	int fd;

	pthread_mutex_lock(&t->lock);
	t->slot[ref->idx].refs--;
	fd = maybe_free(t, ref->idx);
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}

int fs_itab_add_lookup(struct fs_inode_table *t, int fd, const struct stat *st, uint64_t *nodeid)
{
	uint64_t dev = st->st_dev, ino = st->st_ino;

	pthread_mutex_lock(&t->lock);
	uint32_t b = hash_of(t, dev, ino);
	uint32_t idx = t->bucket[b];

	while (idx != FS_NO_SLOT && (t->slot[idx].dev != dev || t->slot[idx].ino != ino))
		idx = t->slot[idx].hash_next;
	if (idx != FS_NO_SLOT) {
		/* Known (perhaps forgotten but still held by a request: the
		 * lookup revives it under the same nodeid). */
		t->slot[idx].nlookup++;
		*nodeid = nodeid_of(t, idx);
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return 0;
	}
	idx = t->free_head;
	if (idx == FS_NO_SLOT) {
		pthread_mutex_unlock(&t->lock);
		close(fd);
		return -ENFILE;
	}
	struct fs_inode *in = &t->slot[idx];

	t->free_head = in->free_next;
	in->fd = fd;
	in->refs = 0;
	in->nlookup = 1;
	in->mode = st->st_mode;
	in->dev = dev;
	in->ino = ino;
	in->hash_next = t->bucket[b];
	t->bucket[b] = idx;
	t->live++;
	*nodeid = nodeid_of(t, idx);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void fs_itab_ref_lookup(struct fs_inode_table *t, const struct fs_iref *ref)
{
	pthread_mutex_lock(&t->lock);
	if (ref->idx != ROOT_IDX)
		t->slot[ref->idx].nlookup++;
	pthread_mutex_unlock(&t->lock);
}

void fs_itab_forget(struct fs_inode_table *t, uint64_t nodeid, uint64_t n)
{
	int fd = -1;

	pthread_mutex_lock(&t->lock);
	uint32_t idx = slot_of(t, nodeid);

	if (idx != FS_NO_SLOT && idx != ROOT_IDX) {
		struct fs_inode *in = &t->slot[idx];

		in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
		fd = maybe_free(t, idx);
	}
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}

void fs_itab_forget_all(struct fs_inode_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < t->cap; i++) {
		if (i == ROOT_IDX || t->slot[i].fd < 0)
			continue;
		t->slot[i].nlookup = 0;
		int fd = maybe_free(t, i);

		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&t->lock);
}

uint32_t fs_itab_live(struct fs_inode_table *t)
{
	uint32_t n;

	pthread_mutex_lock(&t->lock);
	n = t->live;
	pthread_mutex_unlock(&t->lock);
	return n;
}
