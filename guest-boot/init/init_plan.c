/* The built-in init's mount plan (see include/kvmini/init_plan.h): pure,
 * unit-tested on the host. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "kvmini/init_plan.h"

#define NR PLAN_NEWROOT

struct builder {
	struct plan_op *ops;
	unsigned max, n;
	int err;
};

static struct plan_op *add(struct builder *b, enum plan_kind kind, unsigned opt)
{
	struct plan_op *op;

	if (b->err)
		return NULL;
	if (b->n == b->max) {
		b->err = -ENOSPC;
		return NULL;
	}
	op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->opt = opt;
	return op;
}

/* snprintf into a fixed field; too long makes the whole plan fail. */
static void fmt(struct builder *b, char *dst, size_t cap, const char *f, ...)
	__attribute__((format(printf, 4, 5)));

static void fmt(struct builder *b, char *dst, size_t cap, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(dst, cap, f, ap);
	va_end(ap);
	if ((n < 0 || (size_t)n >= cap) && !b->err)
		b->err = -ENAMETOOLONG;
}

static void mount_op(struct builder *b, unsigned opt, const char *src, const char *dst,
		     const char *fstype, unsigned long flags, const char *data)
{
	struct plan_op *op = add(b, PLAN_MOUNT, opt);

	if (!op)
		return;
	fmt(b, op->src, sizeof(op->src), "%s", src);
	fmt(b, op->dst, sizeof(op->dst), "%s", dst);
	fmt(b, op->fstype, sizeof(op->fstype), "%s", fstype ? fstype : "");
	op->flags = flags;
	fmt(b, op->data, sizeof(op->data), "%s", data ? data : "");
}

static void mkdir_op(struct builder *b, unsigned opt, const char *dst, unsigned long mode)
{
	struct plan_op *op = add(b, PLAN_MKDIR, opt);

	if (!op)
		return;
	fmt(b, op->dst, sizeof(op->dst), "%s", dst);
	op->flags = mode;
}

int plan_early(struct plan_op *ops, unsigned max)
{
	struct builder b = { .ops = ops, .max = max };
	const unsigned long nosuid = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	mkdir_op(&b, 0, "/proc", 0555);
	mount_op(&b, 0, "proc", "/proc", "proc", nosuid, NULL);
	mkdir_op(&b, 0, "/sys", 0555);
	mount_op(&b, 0, "sysfs", "/sys", "sysfs", nosuid, NULL);
	mkdir_op(&b, 0, "/dev", 0755);
	mount_op(&b, 0, "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mkdir_op(&b, 0, "/dev/pts", 0755);
	/* gid 5: the tty group in Debian and most distributions. */
	mount_op(&b, 0, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
	mkdir_op(&b, 0, "/dev/shm", 01777);
	mount_op(&b, 0, "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	return b.err ? b.err : (int)b.n;
}

/* Folders that get an empty tmpfs under a read-only root: the init must
 * not put an overlay inside them (they are not the root's). */
static const char *const scratch_ro[] = { "/tmp", "/var/tmp", "/var/log" };
static const char *const kernel_fs[] = { "/run", "/proc", "/sys", "/dev" };

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

int plan_check_overlay(const char *p, char *err, size_t errlen)
{
	const char *why = NULL;

	if (p[0] != '/')
		why = "not an absolute path";
	else if (!strcmp(p, "/"))
		why = "the whole root cannot be an overlay (it is read-only unless the command line says rw)";
	else if (strlen(p) >= PLAN_PATH_MAX - 64)
		why = "too long";
	else if (strpbrk(p, ",:\\\n"))
		why = "',', ':', '\\' and newlines cannot appear in an overlayfs folder";
	else if (strstr(p, "//") || ends_with(p, "/") || strstr(p, "/./") || strstr(p, "/../") ||
		 ends_with(p, "/.") || ends_with(p, "/.."))
		why = "not a normalized path (no '//', '.', '..' or trailing '/')";
	for (size_t i = 0; !why && i < sizeof(kernel_fs) / sizeof(kernel_fs[0]); i++)
		if (under(p, kernel_fs[i]))
			why = "inside a folder the init mounts itself (/run, /proc, /sys, /dev)";
	for (size_t i = 0; !why && i < sizeof(scratch_ro) / sizeof(scratch_ro[0]); i++)
		if (under(p, scratch_ro[i]))
			why = "inside a scratch tmpfs (/tmp, /var/tmp, /var/log), already writable";
	if (!why)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "overlay '%s': %s", p, why);
	return -EINVAL;
}

struct ovl {
	const char *path;
	bool strict; /* the user's: must exist, must mount */
};

static int ovl_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ovl *)a)->path, ((const struct ovl *)b)->path);
}

/* The overlays, parents before children: defaults (best effort, when
 * the folder exists) merged with the user's (strict). */
static void plan_overlays(struct builder *b, const struct plan_in *in)
{
	static const char *const defaults[] = { "/var/lib", "/var/cache" };
	struct ovl list[INIT_MAX_OVERLAYS_ALL];
	unsigned n = 0;

	if (!in->rw)
		for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
			list[n++] = (struct ovl){ defaults[i], false };
	for (unsigned i = 0; i < in->nr_overlays && n < INIT_MAX_OVERLAYS_ALL; i++) {
		bool dup = false;

		for (unsigned j = 0; j < n; j++) {
			if (!strcmp(list[j].path, in->overlays[i])) {
				list[j].strict = true;
				dup = true;
			}
		}
		if (!dup)
			list[n++] = (struct ovl){ in->overlays[i], true };
	}
	qsort(list, n, sizeof(list[0]), ovl_cmp);
	for (unsigned i = 0; i < n; i++) {
		unsigned opt = list[i].strict ? 0 : PLAN_IF_EXISTS | PLAN_BEST_EFFORT;
		char up[PLAN_PATH_MAX], work[PLAN_PATH_MAX], dst[PLAN_PATH_MAX];
		struct plan_op *op;

		fmt(b, up, sizeof(up), NR "/run/kvmini/overlay/%u/upper", i);
		fmt(b, work, sizeof(work), NR "/run/kvmini/overlay/%u/work", i);
		fmt(b, dst, sizeof(dst), NR "%s", list[i].path);
		mkdir_op(b, 0, up, 0755);
		mkdir_op(b, 0, work, 0700);
		op = add(b, PLAN_MOUNT, opt);
		if (!op)
			return;
		fmt(b, op->src, sizeof(op->src), "overlay");
		fmt(b, op->dst, sizeof(op->dst), "%s", dst);
		fmt(b, op->fstype, sizeof(op->fstype), "overlay");
		fmt(b, op->data, sizeof(op->data), "lowerdir=%s,upperdir=%s,workdir=%s", dst, up, work);
	}
}

static void plan_etc(struct builder *b, const char *host)
{
	static const char fstab[] =
		"# /etc/fstab generated by kvmini's init: the root and its scratch\n"
		"# folders are mounted before the system starts; nothing else to mount.\n";
	struct { const char *name; char text[PLAN_DATA_MAX]; } files[3] = {
		{ "hostname", "" }, { "hosts", "" }, { "fstab", "" },
	};

	fmt(b, files[0].text, sizeof(files[0].text), "%s\n", host);
	fmt(b, files[1].text, sizeof(files[1].text),
	    "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", host);
	fmt(b, files[2].text, sizeof(files[2].text), "%s", fstab);
	mkdir_op(b, 0, NR "/run/kvmini/etc", 0755);
	for (int i = 0; i < 3; i++) {
		struct plan_op *op = add(b, PLAN_WRITE, 0);

		if (!op)
			return;
		fmt(b, op->dst, sizeof(op->dst), NR "/run/kvmini/etc/%s", files[i].name);
		fmt(b, op->data, sizeof(op->data), "%s", files[i].text);
	}
	for (int i = 0; i < 3; i++) {
		struct plan_op *op = add(b, PLAN_BIND_RO, PLAN_IF_EXISTS);

		if (!op)
			return;
		fmt(b, op->src, sizeof(op->src), NR "/run/kvmini/etc/%s", files[i].name);
		fmt(b, op->dst, sizeof(op->dst), NR "/etc/%s", files[i].name);
	}
}

static bool hostname_ok(const char *h)
{
	size_t n = strlen(h);

	if (!n || n > 64)
		return false;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      *h == '-' || *h == '.'))
			return false;
	return true;
}

bool plan_share_tag_ok(const char *t)
{
	size_t n = strlen(t);

	return n && n <= PLAN_SHARE_TAG_MAX && t[0] != '.' &&
	       strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Each share but the root's on /mnt/TAG, in a tmpfs over /mnt. */
static int plan_shares(struct builder *b, const struct plan_in *in, bool virtiofs_root,
		       char *err, size_t errlen)
{
	char list[PLAN_DATA_MAX], *save = NULL;
	bool first = true;

	if (!in->shares || !*in->shares)
		return 0;
	if (strlen(in->shares) >= sizeof(list)) {
		snprintf(err, errlen, "kvmini.shares= is too long");
		return -EINVAL;
	}
	strcpy(list, in->shares);
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(t, ':');
		char dst[PLAN_PATH_MAX];
		bool ro = false;

		if (colon) {
			if (strcmp(colon, ":ro")) {
				snprintf(err, errlen, "kvmini.shares=: '%s': only ':ro' may follow a tag", t);
				return -EINVAL;
			}
			*colon = '\0';
			ro = true;
		}
		if (!plan_share_tag_ok(t)) {
			snprintf(err, errlen, "kvmini.shares=: '%s' is not a share tag (1 to 36 letters, "
				 "digits, '.', '_' or '-', not starting with '.')", t);
			return -EINVAL;
		}
		if (virtiofs_root && !strcmp(t, in->root))
			continue;
		/* Best effort: a read-only root without /mnt boots without its
		 * shares (and says so) rather than not at all. */
		if (first) {
			mkdir_op(b, PLAN_BEST_EFFORT, NR "/mnt", 0755);
			mount_op(b, PLAN_IF_EXISTS | PLAN_BEST_EFFORT, "tmpfs", NR "/mnt", "tmpfs",
				 MS_NOSUID | MS_NODEV, "mode=0755");
			first = false;
		}
		fmt(b, dst, sizeof(dst), NR "/mnt/%s", t);
		mkdir_op(b, PLAN_BEST_EFFORT, dst, 0755);
		mount_op(b, PLAN_IF_EXISTS | PLAN_BEST_EFFORT, t, dst, "virtiofs", ro ? MS_RDONLY : 0, NULL);
	}
	return 0;
}

int plan_root(const struct plan_in *in, struct plan_op *ops, unsigned max, char *err, size_t errlen)
{
	struct builder b = { .ops = ops, .max = max };
	const unsigned long scratch = MS_NOSUID | MS_NODEV;
	const char *host = in->hostname ? in->hostname : "kvmini";
	bool virtiofs = in->fstype && !strcmp(in->fstype, "virtiofs");

	if (!in->root || !*in->root) {
		snprintf(err, errlen, "no root= on the kernel command line");
		return -EINVAL;
	}
	if (!virtiofs && strncmp(in->root, "/dev/", 5)) {
		snprintf(err, errlen, "root=%s: kvmini's init takes root=/dev/NAME (a disk), or a "
			 "virtio-fs tag with rootfstype=virtiofs; not UUID=, LABEL= or PARTUUID=", in->root);
		return -EINVAL;
	}
	if (!hostname_ok(host)) {
		snprintf(err, errlen, "hostname '%s': use letters, digits, '-' and '.', at most 64", host);
		return -EINVAL;
	}
	if (in->nr_overlays > INIT_MAX_OVERLAYS_ALL - 2) {
		snprintf(err, errlen, "more than %d overlays", INIT_MAX_OVERLAYS_ALL - 2);
		return -EINVAL;
	}
	for (unsigned i = 0; i < in->nr_overlays; i++)
		if (plan_check_overlay(in->overlays[i], err, errlen))
			return -EINVAL;

	mkdir_op(&b, 0, NR, 0755);
	mount_op(&b, 0, in->root, NR, in->fstype, in->rw ? 0 : MS_RDONLY, in->rootflags);
	/* The kernel's file systems from the initramfs, with what is under them. */
	mount_op(&b, 0, "tmpfs", NR "/run", "tmpfs", scratch, "mode=0755");
	for (size_t i = 0; i < 3; i++) {
		static const char *const moved[] = { "/dev", "/proc", "/sys" };
		struct plan_op *op = add(&b, PLAN_MOVE, 0);

		if (!op)
			break;
		fmt(&b, op->src, sizeof(op->src), "%s", moved[i]);
		fmt(&b, op->dst, sizeof(op->dst), NR "%s", moved[i]);
	}
	mount_op(&b, PLAN_IF_EXISTS, "tmpfs", NR "/tmp", "tmpfs", scratch, "mode=1777");
	if (!in->rw) {
		mount_op(&b, PLAN_IF_EXISTS, "tmpfs", NR "/var/tmp", "tmpfs", scratch, "mode=1777");
		mount_op(&b, PLAN_IF_EXISTS, "tmpfs", NR "/var/log", "tmpfs", scratch, "mode=0755");
	}
	plan_overlays(&b, in);
	if (!in->rw)
		plan_etc(&b, host);
	if (plan_shares(&b, in, virtiofs, err, errlen))
		return -EINVAL;
	if (b.err == -ENAMETOOLONG)
		snprintf(err, errlen, "a path or mount option is too long for the mount plan");
	else if (b.err)
		snprintf(err, errlen, "the mount plan has more than %u steps", max);
	return b.err ? b.err : (int)b.n;
}
