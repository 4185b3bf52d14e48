/* virtio-fs: the device around the FUSE server. Config space and
 * creation errors; FUSE requests as Linux lays them out, completed from
 * the worker threads; FORGET on the high-priority queue; malformed
 * chains answered without harm; a reset with requests in flight that
 * waits for them and lets nothing land in guest memory afterwards; and
 * destruction with requests in flight. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/virtio_fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/virtio_fs.h"
#include "../../check_main.h"
#include "drv_ring.h"

#define HIPRIO 0
#define REQQ 1
#define FILE_SIZE 16384

static struct drv drv;
static struct virtio_dev dev;
static char dir[64];
static uint64_t unique;

static void setup(void)
{
	struct virtio_fs_cfg cfg = { .tag = "myshare", .nr_workers = 3 };
	struct kv_err e = { 0 };
	char p[128], buf[FILE_SIZE];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/kvmini-vfs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/f", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	memset(buf, 'q', sizeof(buf));
	ck_assert_int_eq(write(fd, buf, sizeof(buf)), FILE_SIZE);
	close(fd);
	drv_init(&drv);
	cfg.path = dir;
	ck_assert_msg(virtio_fs_create(&cfg, &drv.gm, NULL, &dev, &e) == 0, "%s", e.msg);
}

static void teardown(void)
{
	char cmd[128];

	virtio_dev_fini(&dev);
	drv_fini(&drv);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct posted {
	uint16_t head;
	uint64_t in;       /* gpa of the request header */
	uint64_t out;      /* gpa of the reply */
	uint32_t room;     /* reply bytes after the header */
	uint64_t unique;
};

/* Posts a request the way Linux's virtio-fs does: header, arguments,
 * then the reply's header and payload (writable). */
static struct posted post(unsigned q, uint32_t op, uint64_t nodeid, const void *arg,
			  size_t alen, const void *tail, size_t tlen, uint32_t room)
{
	struct fuse_in_header h = { .opcode = op, .nodeid = nodeid, .unique = ++unique };
	struct drv_seg s[4];
	unsigned n = 0;
	struct posted p = { .room = room, .unique = h.unique };

	h.len = (uint32_t)(sizeof(h) + alen + tlen);
	s[n] = (struct drv_seg){ drv_alloc(&drv, sizeof(h)), sizeof(h), false };
	p.in = s[n].gpa;
	memcpy(drv_host(&drv, s[n++].gpa), &h, sizeof(h));
	if (alen + tlen) {
		s[n] = (struct drv_seg){ drv_alloc(&drv, alen + tlen), (uint32_t)(alen + tlen), false };
		if (alen)
			memcpy(drv_host(&drv, s[n].gpa), arg, alen);
		if (tlen)
			memcpy((uint8_t *)drv_host(&drv, s[n].gpa) + alen, tail, tlen);
		n++;
	}
	if (op != FUSE_FORGET) {
		s[n] = (struct drv_seg){ drv_alloc(&drv, 16), 16, true };
		p.out = s[n++].gpa;
		if (room) {
			s[n] = (struct drv_seg){ drv_alloc(&drv, room), room, true };
			ck_assert_uint_eq(s[n].gpa, p.out + 16); /* contiguous: read it as one */
			n++;
		}
	}
	p.head = drv_post(&drv, q, s, n);
	return p;
}

/* Waits for the next used entry of @q; returns its length. */
static uint32_t wait_used(unsigned q, uint16_t head)
{
	uint32_t id, len;

	for (int i = 0; i < 5000; i++) {
		if (drv_used(&drv, q, &id, &len)) {
			ck_assert_uint_eq(id, head);
			return len;
		}
		usleep(1000);
	}
	ck_abort_msg("no completion on queue %u", q);
	return 0;
}

/* The reply header of @p, checked against the used length. */
static struct fuse_out_header reply(const struct posted *p, uint32_t used)
{
	struct fuse_out_header oh;

	memcpy(&oh, drv_host(&drv, p->out), sizeof(oh));
	ck_assert_uint_eq(oh.len, used);
	ck_assert_uint_eq(oh.unique, p->unique);
	ck_assert_uint_le(used, 16 + p->room);
	return oh;
}

static void fuse_init(void)
{
	struct fuse_init_in in = { .major = 7, .minor = 37, .flags = FUSE_MAX_PAGES };
	struct posted p = post(REQQ, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, 64);
	struct fuse_out_header oh;

	drv_kick(&drv, REQQ);
	oh = reply(&p, wait_used(REQQ, p.head));
	ck_assert_int_eq(oh.error, 0);
}

START_TEST(config_and_creation_errors)
{
	struct virtio_fs_config c;
	struct virtio_fs_cfg cfg = { .path = dir, .tag = "" };
	struct virtio_dev d2;
	struct kv_err e = { 0 };

	ck_assert_uint_eq(dev.device_id, VIRTIO_ID_FS);
	ck_assert_uint_eq(dev.nr_queues, 2);
	ck_assert_uint_eq(dev.config_len, sizeof(c));
	dev.ops->config_read(&dev, 0, &c, sizeof(c));
	ck_assert_mem_eq(c.tag, "myshare\0\0\0", 10);
	ck_assert_uint_eq(le32toh(c.num_request_queues), 1);
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "tag"));
	cfg.tag = "0123456789012345678901234567890123456"; /* 37 */
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), -EINVAL);
	cfg.tag = "t";
	cfg.num_request_queues = 8;
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), -EINVAL);
	cfg.num_request_queues = 0;
	cfg.path = "/nonexistent/kvmini";
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/kvmini"));
	cfg.path = "/etc/passwd";
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), -ENOTDIR);
	ck_assert_ptr_nonnull(strstr(e.msg, "directory"));
	/* A 36-byte tag fills the field without a NUL. */
	cfg.path = dir;
	cfg.tag = "012345678901234567890123456789012345";
	ck_assert_int_eq(virtio_fs_create(&cfg, &drv.gm, NULL, &d2, &e), 0);
	d2.ops->config_read(&d2, 0, &c, sizeof(c));
	ck_assert_mem_eq(c.tag, cfg.tag, 36);
	virtio_dev_fini(&d2);
}
END_TEST

START_TEST(requests_over_the_ring)
{
	struct fuse_entry_out e;
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_read_in ri = { .size = FILE_SIZE };
	struct fuse_out_header oh;
	struct posted p;
	uint32_t used;

	drv_attach(&drv, &dev, 0);
	fuse_init();
	p = post(REQQ, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "f", 2, sizeof(e));
	drv_kick(&drv, REQQ);
	used = wait_used(REQQ, p.head);
	ck_assert_uint_eq(used, 16 + sizeof(e));
	oh = reply(&p, used);
	ck_assert_int_eq(oh.error, 0);
	memcpy(&e, drv_host(&drv, p.out + 16), sizeof(e));
	ck_assert_uint_eq(e.attr.size, FILE_SIZE);
	p = post(REQQ, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, 0, 16);
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&p, wait_used(REQQ, p.head)).error, 0);
	ri.fh = ((struct fuse_open_out *)drv_host(&drv, p.out + 16))->fh;
	p = post(REQQ, FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL, 0, FILE_SIZE);
	drv_kick(&drv, REQQ);
	used = wait_used(REQQ, p.head);
	ck_assert_uint_eq(used, 16 + FILE_SIZE);
	ck_assert_uint_eq(((uint8_t *)drv_host(&drv, p.out + 16))[FILE_SIZE - 1], 'q');
	ck_assert_uint_ge(drv.irqs[REQQ], 1);
	/* FORGET on the high-priority queue: no reply, used length 0. */
	struct fuse_forget_in fi = { .nlookup = 1 };

	p = post(HIPRIO, FUSE_FORGET, e.nodeid, &fi, sizeof(fi), NULL, 0, 0);
	drv_kick(&drv, HIPRIO);
	ck_assert_uint_eq(wait_used(HIPRIO, p.head), 0);
	ck_assert(virtio_dev_live(&dev));
	ck_assert_uint_eq(virtio_fs_in_flight(&dev), 0);

	/* --report's counts: five requests, one of each kind, each kicked
	 * alone; the four replies on the request queue interrupted (the
	 * FORGET's used entry may not: no one waits for it). */
	struct virtio_fs_counts c;

	virtio_fs_counts(&dev, &c);
	ck_assert_str_eq(c.tag, "myshare");
	ck_assert_uint_eq(c.chains, 5);
	ck_assert_uint_eq(c.notifications, 5);
	ck_assert_uint_ge(c.interrupts, 4);
	ck_assert_uint_le(c.interrupts, 5);
	ck_assert_uint_eq(c.ops[FUSE_INIT], 1);
	ck_assert_uint_eq(c.ops[FUSE_LOOKUP], 1);
	ck_assert_uint_eq(c.ops[FUSE_OPEN], 1);
	ck_assert_uint_eq(c.ops[FUSE_READ], 1);
	ck_assert_uint_eq(c.ops[FUSE_FORGET], 1);
	ck_assert_uint_eq(c.ops[FUSE_GETATTR], 0);
}
END_TEST

START_TEST(many_at_once)
{
	struct fuse_getattr_in gi = { 0 };
	static struct posted p[60];
	bool seen[60] = { false };
	uint32_t id, len;
	unsigned got = 0;

	drv_attach(&drv, &dev, 0);
	fuse_init();
	/* Four descriptors each (header, args, reply header, reply): 64 fit. */
	for (unsigned i = 0; i < 60; i++)
		p[i] = post(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), NULL, 0,
			    sizeof(struct fuse_attr_out));
	drv_kick(&drv, REQQ);
	for (int t = 0; t < 5000 && got < 60; t++) {
		while (drv_used(&drv, REQQ, &id, &len)) {
			for (unsigned i = 0; i < 60; i++) {
				if (p[i].head != id || seen[i])
					continue;
				seen[i] = true;
				ck_assert_int_eq(reply(&p[i], len).error, 0);
				got++;
				break;
			}
		}
		usleep(600);
	}
	ck_assert_uint_eq(got, 60);

	/* One kick for the sixty: one notification handled, sixty requests. */
	struct virtio_fs_counts c;

	virtio_fs_counts(&dev, &c);
	ck_assert_uint_eq(c.ops[FUSE_GETATTR], 60);
	ck_assert_uint_eq(c.chains, 61);
	ck_assert_uint_eq(c.notifications, 2);
}
END_TEST

START_TEST(malformed_chains)
{
	struct fuse_getattr_in gi = { 0 };
	struct drv_seg s[2];
	struct posted p;
	uint16_t head;

	drv_attach(&drv, &dev, 0);
	fuse_init();
	/* No writable part for a request that needs a reply. */
	s[0] = (struct drv_seg){ drv_alloc(&drv, 56), 56, false };
	memcpy(drv_host(&drv, s[0].gpa),
	       &(struct fuse_in_header){ .len = 56, .opcode = FUSE_GETATTR, .nodeid = 1 }, 40);
	head = drv_post(&drv, REQQ, s, 1);
	drv_kick(&drv, REQQ);
	ck_assert_uint_eq(wait_used(REQQ, head), 0);
	/* Shorter than a header. */
	s[0].len = 20;
	s[1] = (struct drv_seg){ drv_alloc(&drv, 200), 200, true };
	head = drv_post(&drv, REQQ, s, 2);
	drv_kick(&drv, REQQ);
	ck_assert_uint_eq(wait_used(REQQ, head), 0);
	/* A lying length: answered EINVAL. */
	p = post(REQQ, FUSE_GETATTR, 1, &gi, sizeof(gi), NULL, 0, 200);
	((struct fuse_in_header *)drv_host(&drv, p.in))->len = 1000;
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&p, wait_used(REQQ, p.head)).error, -EINVAL);
	ck_assert(virtio_dev_live(&dev));
}
END_TEST

START_TEST(reset_waits_for_requests_in_flight)
{
	struct fuse_entry_out e;
	struct fuse_open_in oi = { .flags = O_RDONLY };
	struct fuse_read_in ri = { .size = FILE_SIZE };
	static struct posted p[60];
	uint8_t *page0 = drv_host(&drv, 0);
	uint8_t zero[4096] = { 0 };
	struct posted q;

	drv_attach(&drv, &dev, 0);
	fuse_init();
	q = post(REQQ, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "f", 2, sizeof(e));
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&q, wait_used(REQQ, q.head)).error, 0);
	memcpy(&e, drv_host(&drv, q.out + 16), sizeof(e));
	q = post(REQQ, FUSE_OPEN, e.nodeid, &oi, sizeof(oi), NULL, 0, 16);
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&q, wait_used(REQQ, q.head)).error, 0);
	ri.fh = ((struct fuse_open_out *)drv_host(&drv, q.out + 16))->fh;
	for (unsigned i = 0; i < 60; i++)
		p[i] = post(REQQ, FUSE_READ, e.nodeid, &ri, sizeof(ri), NULL, 0, FILE_SIZE);
	memset(page0, 0, 4096);
	drv_kick(&drv, REQQ);
	/* Reset at once: returns only when no worker touches guest memory. */
	pthread_mutex_lock(&dev.lock);
	virtio_dev_set_status(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	ck_assert_uint_eq(virtio_fs_in_flight(&dev), 0);
	for (unsigned i = 0; i < 60; i++)
		memset(drv_host(&drv, p[i].out), 0xee, 16 + FILE_SIZE);
	uint16_t used_idx = ((uint16_t *)drv_host(&drv, drv.q[REQQ].used))[1];

	usleep(200 * 600);
	/* Nothing written since: no reply, no used entry, nothing at the
	 * reset rings' address 0. */
	for (unsigned i = 0; i < 60; i++)
		for (unsigned b = 0; b < 16 + FILE_SIZE; b += 512)
			ck_assert_uint_eq(((uint8_t *)drv_host(&drv, p[i].out))[b], 0xee);
	ck_assert_uint_eq(((uint16_t *)drv_host(&drv, drv.q[REQQ].used))[1], used_idx);
	ck_assert_mem_eq(page0, zero, sizeof(zero));
	/* The connection is gone: a new driver starts over with INIT, and
	 * the old nodeid means nothing. */
	memset(drv.q, 0, sizeof(drv.q));
	memset(drv_host(&drv, 0x600), 0, 2 * 0x8000); /* the rings of drv_attach */
	drv_attach(&drv, &dev, 0);
	struct fuse_getattr_in gi = { 0 };

	q = post(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), NULL, 0, 104);
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&q, wait_used(REQQ, q.head)).error, -EIO);
	fuse_init();
	q = post(REQQ, FUSE_GETATTR, e.nodeid, &gi, sizeof(gi), NULL, 0, 104);
	drv_kick(&drv, REQQ);
	ck_assert_int_eq(reply(&q, wait_used(REQQ, q.head)).error, -EBADF);
}
END_TEST

START_TEST(destroy_with_requests_in_flight)
{
	struct fuse_getattr_in gi = { 0 };

	drv_attach(&drv, &dev, 0);
	fuse_init();
	/* Four descriptors each: 60 fit the 256-entry table. */
	for (unsigned i = 0; i < 60; i++)
		post(REQQ, FUSE_GETATTR, FUSE_ROOT_ID, &gi, sizeof(gi), NULL, 0, 104);
	drv_kick(&drv, REQQ);
	/* teardown destroys it now: the workers finish or drop their work. */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_fs");
	TCase *tc = tcase_create("fs");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, config_and_creation_errors);
	tcase_add_test(tc, requests_over_the_ring);
	tcase_add_test(tc, many_at_once);
	tcase_add_test(tc, malformed_chains);
	tcase_add_test(tc, reset_waits_for_requests_in_flight);
	tcase_add_test(tc, destroy_with_requests_in_flight);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
