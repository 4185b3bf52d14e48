/* virtio-blk allocates nothing once it exists: no malloc or free on the
 * kick, completion, reset (drain) or failure paths, for read-write,
 * read-only and snapshot disks. kvmini's threads run under seccomp
 * filters, and a thread's first malloc or free there can make glibc call
 * what the filter forbids (openat of /proc/sys/vm/overcommit_memory,
 * sched_getaffinity: issue 9 items 0 and 1), so "nothing" is the rule.
 *
 * As in kvmini, the event loop runs on its own thread, which enters its
 * thread policy first (here: "count my allocations"), and the reset
 * comes from another thread (a vCPU's) that counts too; the test thread
 * (and check's own bookkeeping) is not counted. Allocations are counted
 * through glibc's entry points in the plain build, through the
 * sanitizer's hooks under ASan. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/thread_policy.h"
#include "blk_driver.h"
#include "../../check_main.h"

static _Thread_local bool counting;
static atomic_uint allocs, frees;

#ifdef __SANITIZE_ADDRESS__
/* From the sanitizer runtime (GCC ships no allocator_interface.h). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
	if (counting)
		atomic_fetch_add(&allocs, 1);
}

static void on_free(const volatile void *p)
{
	if (counting)
		atomic_fetch_add(&frees, 1);
}

static void count_allocations(void)
{
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* The plain build: this executable's allocator entry points count, then
 * hand over to glibc's. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);
void __libc_free(void *p);

static void counted(void)
{
	if (counting)
		atomic_fetch_add(&allocs, 1);
}

void *malloc(size_t n)
{
	counted();
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	counted();
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	counted();
	return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	counted();
	return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
	counted();
	return __libc_memalign(align, n);
}

int posix_memalign(void **pp, size_t align, size_t n)
{
	counted();
	*pp = __libc_memalign(align, n);
	return *pp ? 0 : ENOMEM;
}

void free(void *p)
{
	if (p && counting)
		atomic_fetch_add(&frees, 1);
	__libc_free(p);
}

static void count_allocations(void)
{
}
#endif

static char dir[64], disk[128];

static void setup(void)
{
	static uint8_t img[256 * 1024];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/kvmini-blkalloc-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	setenv("TMPDIR", dir, 1);
	snprintf(disk, sizeof(disk), "%s/disk.img", dir);
	for (unsigned i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 13 + 1);
	fd = open(disk, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, sizeof(img)), (ssize_t)sizeof(img));
	close(fd);
	count_allocations();
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct bdrv b;

/* Request @i of a mix: reads and writes (aligned, unaligned, crossing
 * overlay blocks), flush, write-zeroes, GET_ID, an unknown type, a read
 * past the end. */
static void post_mixed(uint16_t head, unsigned i)
{
	struct virtio_blk_discard_write_zeroes z = { .sector = htole64(8 * i + 3),
						     .num_sectors = htole32(5) };
	struct bdrv_seg segs[2] = { { (i % 3) ? 0 : 1, 512 * (1 + i % 9) }, { 8192, 512 } };
	bool ro = b.dev.features & (1ull << VIRTIO_BLK_F_RO);
	bool zeroes = b.dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES);

	switch (i % 8) {
	case 0:
	case 1:
		bdrv_post(&b, head, ro ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, 7 * i, segs, 1 + i % 2);
		break;
	case 2:
	case 3:
		bdrv_post(&b, head, VIRTIO_BLK_T_IN, 5 * i, segs, 1 + i % 2);
		break;
	case 4:
		bdrv_post(&b, head, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
		break;
	case 5:
		if (zeroes) {
			memcpy(bdrv_data(&b, head), &z, sizeof(z));
			segs[0] = (struct bdrv_seg){ 0, sizeof(z) };
			bdrv_post(&b, head, VIRTIO_BLK_T_WRITE_ZEROES, 0, segs, 1);
		} else {
			bdrv_post(&b, head, VIRTIO_BLK_T_IN, 0, segs, 1);
		}
		break;
	case 6:
		segs[0] = (struct bdrv_seg){ 0, 20 };
		bdrv_post(&b, head, i % 16 == 6 ? VIRTIO_BLK_T_GET_ID : 0x77, 0, segs, 1);
		break;
	default:
		bdrv_post(&b, head, VIRTIO_BLK_T_IN, 512, segs, 1); /* past the end */
		break;
	}
}

/* The loop thread's policy: from here on, count. */
static int count_this_thread(const void *ctx, struct kv_err *e)
{
	counting = true;
	return 0;
}

static const struct thread_policy count_policy = { count_this_thread, NULL };

static void *vcpu_reset(void *arg)
{
	struct virtio_dev *dev = arg;

	counting = true;
	pthread_mutex_lock(&dev->lock);
	virtio_dev_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	counting = false;
	return NULL;
}

static void open_threaded(const struct virtio_blk_cfg *cfg, uint16_t qsize, bool event_idx)
{
	struct kv_err e = { 0 };

	ck_assert_msg(bdrv_open(&b, cfg, qsize, event_idx, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(evloop_start(b.loop, &count_policy, &e), 0);
	b.threaded = true;
}

static void expect_none(const char *what)
{
	ck_assert_msg(atomic_load(&allocs) == 0 && atomic_load(&frees) == 0,
		      "%s: %u allocations and %u frees after create", what, atomic_load(&allocs),
		      atomic_load(&frees));
}

START_TEST(nothing_allocates_after_create)
{
	struct virtio_blk_cfg cfg = { .path = disk, .readonly = _i == 1, .snapshot = _i == 2 };
	const char *what = _i == 1 ? "read-only disk" : _i == 2 ? "snapshot disk" : "read-write disk";
	uint16_t head;
	uint32_t len;
	uint8_t st;
	pthread_t t;

	open_threaded(&cfg, 64, _i == 2);
	/* Kicks and completions, twice the ring over. */
	for (unsigned round = 0; round < 2; round++) {
		for (uint16_t h = 0; h < 64; h++)
			post_mixed(h, round * 64 + h);
		bdrv_kick_async(&b);
		for (unsigned i = 0; i < 64; i++)
			ck_assert(bdrv_next_used(&b, 10000, &head, &len, &st));
	}
	/* A reset from a vCPU with requests in flight (drain). */
	for (uint16_t h = 0; h < 32; h++)
		post_mixed(h, h);
	bdrv_kick_async(&b);
	usleep(1000);
	ck_assert_int_eq(pthread_create(&t, NULL, vcpu_reset, &b.dev), 0);
	pthread_join(t, NULL);
	evloop_stop(b.loop);
	expect_none(what);
	bdrv_close(&b);
}
END_TEST

START_TEST(failure_path_allocates_nothing)
{
	struct virtio_blk_cfg cfg = { .path = disk };
	struct bdrv_seg seg = { 0, 512 };

	open_threaded(&cfg, 16, false);
	bdrv_post(&b, 0, VIRTIO_BLK_T_IN, 0, &seg, 1);
	*(uint64_t *)b.ram = 1ull << 40; /* its indirect table, outside RAM */
	bdrv_kick_async(&b);
	for (int i = 0; i < 1000 && !b.dev.broken; i++)
		usleep(1000);
	evloop_stop(b.loop);
	ck_assert(b.dev.broken);
	expect_none("a device failure");
	bdrv_close(&b);
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("virtio_block_alloc");
	TCase *tc = tcase_create("alloc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, nothing_allocates_after_create, 0, 3);
	tcase_add_test(tc, failure_path_allocates_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(alloc_suite());
}
