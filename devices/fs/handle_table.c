/* The file-handle table: see include/kvmini/fs_tables.h. A handle dies
 * when the guest released it and no request uses it any more. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvmini/fs_tables.h"

int fs_htab_init(struct fs_handle_table *t, uint32_t cap, struct kv_err *e)
{
	if (cap < 1)
		return kv_err_set(e, -EINVAL, "handle table: capacity %u is too small", cap);
	t->slot = calloc(cap, sizeof(*t->slot));
	t->dirbufs = calloc(cap, FS_HTAB_DIRBUF);
	if (!t->slot || !t->dirbufs) {
		free(t->slot);
		free(t->dirbufs);
		t->slot = NULL;
		t->dirbufs = NULL;
		return kv_err_set(e, -ENOMEM, "handle table: out of memory for %u handles", cap);
	}
	t->cap = cap;
	for (uint32_t i = 0; i < cap; i++) {
		t->slot[i].dbuf = t->dirbufs + (size_t)i * FS_HTAB_DIRBUF;
		t->slot[i].fd = -1;
		t->slot[i].gen = 1;
		t->slot[i].free_next = i + 1 < cap ? i + 1 : FS_NO_SLOT;
		pthread_mutex_init(&t->slot[i].lock, NULL);
	}
	t->free_head = 0;
	t->live = 0;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void fs_htab_fini(struct fs_handle_table *t)
{
	if (!t->slot)
		return;
	for (uint32_t i = 0; i < t->cap; i++) {
		if (t->slot[i].fd >= 0)
			close(t->slot[i].fd);
		pthread_mutex_destroy(&t->slot[i].lock);
	}
	free(t->slot);
	free(t->dirbufs);
	t->slot = NULL;
	t->dirbufs = NULL;
	pthread_mutex_destroy(&t->lock);
}

/* Frees @h when released and unused; returns the fd to close or -1. */
static int maybe_free(struct fs_handle_table *t, struct fs_handle *h)
{
	int fd = h->fd;

	if (h->live || h->refs || fd < 0)
		return -1;
	h->fd = -1;
	h->gen++;
	h->free_next = t->free_head;
	t->free_head = (uint32_t)(h - t->slot);
	t->live--;
	return fd;
}

int fs_htab_add(struct fs_handle_table *t, int fd, bool dir, uint64_t *fh)
{
	pthread_mutex_lock(&t->lock);
	uint32_t idx = t->free_head;

	if (idx == FS_NO_SLOT) {
		pthread_mutex_unlock(&t->lock);
		return -ENFILE;
	}
	struct fs_handle *h = &t->slot[idx];

	t->free_head = h->free_next;
	h->fd = fd;
	h->refs = 0;
	h->live = true;
	h->dir = dir;
	h->dir_at_valid = false;
	h->dpos = h->dlen = 0;
	t->live++;
	*fh = (uint64_t)h->gen << 32 | (idx + 1);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* The live handle @fh names, or NULL. Lock held. */
static struct fs_handle *lookup(struct fs_handle_table *t, uint64_t fh)
{
	uint32_t low = (uint32_t)fh;

	if (low == 0 || low > t->cap)
		return NULL;
	struct fs_handle *h = &t->slot[low - 1];

	if (!h->live || h->gen != (uint32_t)(fh >> 32))
		return NULL;
	return h;
}

int fs_htab_get(struct fs_handle_table *t, uint64_t fh, struct fs_handle **out)
{
	pthread_mutex_lock(&t->lock);
	struct fs_handle *h = lookup(t, fh);

	if (h)
		h->refs++;
	pthread_mutex_unlock(&t->lock);
	*out = h;
	return h ? 0 : -EBADF;
}

void fs_htab_put(struct fs_handle_table *t, struct fs_handle *h)
{
	int fd;

	pthread_mutex_lock(&t->lock);
	h->refs--;
	fd = maybe_free(t, h);
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}

int fs_htab_release(struct fs_handle_table *t, uint64_t fh)
{
	int fd = -1;

	pthread_mutex_lock(&t->lock);
	struct fs_handle *h = lookup(t, fh);

	if (h) {
		h->live = false;
		fd = maybe_free(t, h);
	}
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
	return h ? 0 : -EBADF;
}

void fs_htab_release_all(struct fs_handle_table *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < t->cap; i++) {
		struct fs_handle *h = &t->slot[i];

		if (!h->live)
			continue;
		h->live = false;
		int fd = maybe_free(t, h);

		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&t->lock);
}

uint32_t fs_htab_live(struct fs_handle_table *t)
{
	uint32_t n;

	pthread_mutex_lock(&t->lock);
	n = t->live;
	pthread_mutex_unlock(&t->lock);
	return n;
}
