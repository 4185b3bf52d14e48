/* Worker threads for the FUSE server: see include/kvmini/fs_pool.h.
 *
 * System calls a worker makes once its thread_enter hook has run: what a
 * seccomp filter for these threads must allow, with the argument checks
 * it can make. tests/unit/fs/test_fs_pool.c runs every operation (with
 * the host's newest calls and with every fallback) under a filter of
 * exactly this list and fails on any other call.
 *
 *   the pool itself:
 *     futex                  condition variable and mutexes (every table)
 *     rt_sigprocmask, madvise, munmap, exit
 *                            only when the thread ends (glibc blocks
 *                            signals, then frees its stack)
 *   the FUSE server (devices/fs/ files), all on fds it opened itself:
 *     openat2                lookups: dirfd an inode's O_PATH fd, how->flags
 *                            O_PATH|O_NOFOLLOW|O_CLOEXEC (+O_CREAT|O_EXCL|
 *                            access mode for CREATE), resolve BENEATH|
 *                            NO_MAGICLINKS|NO_SYMLINKS; size == 24. (The
 *                            flags sit behind a pointer: seccomp sees only
 *                            the size.)
 *     openat                 without openat2: same flags as above on an
 *                            inode fd; re-opening a regular file: dirfd ==
 *                            the server's /proc/self/fd fd, flags an access
 *                            mode | O_APPEND|O_TRUNC|O_SYNC|O_DSYNC|
 *                            O_NONBLOCK|O_NOCTTY|O_CLOEXEC (never O_CREAT);
 *                            OPENDIR: path ".", O_RDONLY|O_DIRECTORY|
 *                            O_CLOEXEC|O_NONBLOCK
 *     close
 *     newfstatat             flags AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW, or
 *                            AT_EMPTY_PATH (glibc's fstat)
 *     fstatfs
 *     preadv, pwritev        on file handles
 *     getdents64, lseek      directory handles (lseek SEEK_SET); lseek also
 *                            for FUSE_LSEEK (SEEK_DATA, SEEK_HOLE)
 *     mkdirat, mknodat       mknodat: mode S_IFREG|S_IFIFO|S_IFSOCK only, dev 0
 *     symlinkat, unlinkat    unlinkat flags 0 or AT_REMOVEDIR
 *     linkat                 flags AT_EMPTY_PATH, or AT_SYMLINK_FOLLOW with
 *                            olddirfd == the /proc/self/fd fd
 *     renameat2              flags 0, RENAME_NOREPLACE or RENAME_EXCHANGE
 *     readlinkat             path ""
 *     fchmodat2 (452)        flags AT_EMPTY_PATH (kernel >= 6.6)
 *     fchmodat               without fchmodat2: dirfd == the /proc/self/fd fd
 *     fchmod, ftruncate      on file handles (ftruncate also on a file
 *                            re-opened O_WRONLY for SETATTR)
 *     fchownat               flags AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW
 *     utimensat              flags AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW
 *     fallocate              mode within KEEP_SIZE|PUNCH_HOLE|ZERO_RANGE|
 *                            COLLAPSE_RANGE|INSERT_RANGE
 *     fsync, fdatasync, syncfs
 *     faccessat2             flags AT_EMPTY_PATH|AT_EACCESS (else faccessat
 *                            with dirfd == the /proc/self/fd fd)
 *     getxattr, setxattr, listxattr, removexattr: on the path
 *                            "/proc/self/fd/N" (regular files and
 *                            directories only; setxattr flags 0,
 *                            XATTR_CREATE or XATTR_REPLACE)
 *   completing a request (devices/virtio/fs.c, under the device lock):
 *     write                  the queue's irqfd (MSI-X), 8 bytes
 *     ioctl KVM_IRQ_LINE     INTx / virtio-mmio interrupt line
 *     (virtio-pci re-routes an MSI-X vector whose route is stale with
 *     KVM_SET_GSI_ROUTING and KVM_IRQFD; that happens on the completing
 *     thread only when routing failed when the guest wrote the vector)
 *   logging (rate-limited, guest-triggered):
 *     write (fd 2), clock_gettime (vDSO fallback)
 *   no other ioctl, no socket, no clone, no mmap, mprotect or brk (the
 *   workers never allocate), no open of a path that is not one of the
 *   above.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/fs_pool.h"

struct fs_worker {
	struct fs_pool *p;
	pthread_t thread;
	bool started;         /* pthread_create succeeded */
	void *scratch;
	unsigned index;
};

struct fs_pool {
	struct fs_pool_cfg cfg;
	char name[32];
	pthread_mutex_t lock;
	pthread_cond_t work;      /* a job was queued, or stop */
	pthread_cond_t ready;     /* a worker finished its start-up */
	struct fs_pool_job *head, *tail;
	bool stop;
	unsigned nr_ready;
	int start_err;            /* first start-up failure */
	struct kv_err err;
	struct fs_worker w[FS_POOL_MAX_WORKERS];
};

static void *worker_main(void *arg)
{
	struct fs_worker *w = arg;
	struct fs_pool *p = w->p;
	struct kv_err e = { 0 };
	int r = 0;
	char tname[16];

	snprintf(tname, sizeof(tname), "%.8s-w%u", p->name, w->index);
	pthread_setname_np(pthread_self(), tname);
	if (p->cfg.worker_init)
		r = p->cfg.worker_init(p->cfg.ctx, &e);
	if (!r && p->cfg.thread_enter)
		r = p->cfg.thread_enter(p->cfg.thread_ctx, &e);

	pthread_mutex_lock(&p->lock);
	if (r && !p->start_err) {
		p->start_err = r;
		p->err = e;
	}
	p->nr_ready++;
	pthread_cond_broadcast(&p->ready);
	for (;;) {
		while (!p->stop && !p->head && !r)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop || r)
			break;
		struct fs_pool_job *job = p->head;

		p->head = job->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		p->cfg.run(p->cfg.ctx, job, w->scratch);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void stop_workers(struct fs_pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->cfg.nr_workers; i++)
		if (p->w[i].started)
			pthread_join(p->w[i].thread, NULL);
}

static void free_pool(struct fs_pool *p)
{
	for (unsigned i = 0; i < p->cfg.nr_workers; i++)
		free(p->w[i].scratch);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->ready);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int fs_pool_create(const struct fs_pool_cfg *cfg, struct fs_pool **out, struct kv_err *e)
{
	struct fs_pool *p;
	unsigned started = 0;
	int r;

	if (cfg->nr_workers < 1 || cfg->nr_workers > FS_POOL_MAX_WORKERS)
		return kv_err_set(e, -EINVAL, "%s: %u worker threads (1 to %u)", cfg->name,
				  cfg->nr_workers, FS_POOL_MAX_WORKERS);
	p = calloc(1, sizeof(*p));
	if (!p)
		return kv_err_set(e, -ENOMEM, "%s: out of memory", cfg->name);
	p->cfg = *cfg;
	snprintf(p->name, sizeof(p->name), "%s", cfg->name);
	p->cfg.name = p->name;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->ready, NULL);
	for (unsigned i = 0; i < cfg->nr_workers; i++) {
		p->w[i].p = p;
		p->w[i].index = i;
		p->w[i].scratch = calloc(1, cfg->scratch_size ? cfg->scratch_size : 1);
		if (!p->w[i].scratch) {
			free_pool(p);
			return kv_err_set(e, -ENOMEM, "%s: out of memory for worker buffers",
					  cfg->name);
		}
	}
	for (; started < cfg->nr_workers; started++) {
		r = pthread_create(&p->w[started].thread, NULL, worker_main, &p->w[started]);
		if (r) {
			kv_err_set(e, -r, "%s: cannot start worker thread: %s", cfg->name,
				   strerror(r));
			stop_workers(p);
			free_pool(p);
			return -r;
		}
		p->w[started].started = true;
	}
	pthread_mutex_lock(&p->lock);
	while (p->nr_ready < cfg->nr_workers)
		pthread_cond_wait(&p->ready, &p->lock);
	r = p->start_err;
	if (r && e)
		*e = p->err;
	pthread_mutex_unlock(&p->lock);
	if (r) {
		kv_err_prefix(e, "%s: worker start-up", cfg->name);
		stop_workers(p);
		free_pool(p);
		return r;
	}
	*out = p;
	return 0;
}

unsigned fs_pool_destroy(struct fs_pool *p)
{
	unsigned dropped = 0;

	if (!p)
		return 0;
	stop_workers(p);
	for (struct fs_pool_job *j = p->head; j; j = j->next)
		dropped++;
	free_pool(p);
	return dropped;
}

void fs_pool_submit(struct fs_pool *p, struct fs_pool_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

unsigned fs_pool_cancel(struct fs_pool *p, void *owner)
{
	struct fs_pool_job **link, *prev = NULL;
	unsigned n = 0;

	pthread_mutex_lock(&p->lock);
	link = &p->head;
	while (*link) {
		struct fs_pool_job *j = *link;

		if (j->owner == owner) {
			*link = j->next;
			n++;
			continue;
		}
		prev = j;
		link = &j->next;
	}
	p->tail = prev;
	pthread_mutex_unlock(&p->lock);
	return n;
}
