/* Which of the guest kernel's modules to load, and in which order (see
 * include/kvmini/kmods.h). libkmod finds modules in depmod's index and
 * reads each module's modinfo (depends=, softdep=, vermagic=, alias=);
 * the order is a depth-first walk, dependencies first. */
#include <dirent.h>
#include <errno.h>
#include <libkmod.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/kmods.h"
#include "kvmini/log.h"

#define MAX_DEPTH 32
#define TREE_MAX 65536

struct tree_file {
	char *name;
	char *path;
};

struct resolver {
	struct kmod_ctx *ctx;
	const char *dir;
	const char *release;
	struct kmods *out;
	struct kv_err *e;
	char **builtin;
	unsigned nr_builtin;
	/* Unindexed trees: every module file, walked once. */
	struct tree_file *tree;
	unsigned nr_tree, cap_tree;
	bool tree_walked;
	const char *visiting[MAX_DEPTH + 1];
	unsigned depth;
};

static void normalize(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < len; i++)
		out[i] = in[i] == '-' ? '_' : in[i];
	out[i] = '\0';
}

/* "dir/xyz-abc.ko.zst" -> "xyz_abc"; false when not a module file. */
static bool module_name_of(const char *file, char *name, size_t len)
{
	const char *base = strrchr(file, '/');
	const char *ko;

	base = base ? base + 1 : file;
	ko = strstr(base, ".ko");
	if (!ko || ko == base || (ko[3] && strcmp(ko + 3, ".xz") && strcmp(ko + 3, ".zst") &&
				  strcmp(ko + 3, ".gz")))
		return false;
	if ((size_t)(ko - base) >= len)
		return false;
	memcpy(name, base, (size_t)(ko - base));
	name[ko - base] = '\0';
	normalize(name, name, len);
	return true;
}

/* libkmod's log callback: its format is libkmod's own, not ours. */
__attribute__((format(printf, 6, 0)))
static void kmod_log(void *data, int priority, const char *file, int line, const char *fn,
		     const char *format, va_list args)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), format, args);
	msg[strcspn(msg, "\n")] = '\0';
	LOG_DEBUG("libkmod: %s", msg);
}

/* modules.builtin: "kernel/fs/ext4/ext4.ko" per line. Missing: none. */
static int read_builtin(struct resolver *r)
{
	char path[PATH_MAX], line[PATH_MAX], name[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/modules.builtin", r->dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char **nb;

		line[strcspn(line, "\n")] = '\0';
		if (!module_name_of(line, name, sizeof(name)))
			continue;
		nb = realloc(r->builtin, (r->nr_builtin + 1) * sizeof(*nb));
		if (!nb || !(nb[r->nr_builtin] = strdup(name))) {
			if (nb)
				r->builtin = nb;
			fclose(f);
			return kv_err_set(r->e, -ENOMEM, "out of memory reading %s", path);
		}
		r->builtin = nb;
		r->nr_builtin++;
	}
	fclose(f);
	return 0;
}

static bool is_builtin(const struct resolver *r, const char *name)
{
	for (unsigned i = 0; i < r->nr_builtin; i++)
		if (!strcmp(r->builtin[i], name))
			return true;
	return false;
}

static int walk(struct resolver *r, const char *dirpath, unsigned depth)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (depth > 16 || !(d = opendir(dirpath)))
		return 0;
	while (!ret && (de = readdir(d))) {
		char path[PATH_MAX], name[256];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name) >= (int)sizeof(path) ||
		    lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			ret = walk(r, path, depth + 1);
		} else if (S_ISREG(st.st_mode) && module_name_of(path, name, sizeof(name))) {
			if (r->nr_tree == r->cap_tree) {
				unsigned ncap = r->cap_tree ? r->cap_tree * 2 : 1024;
				struct tree_file *nt = ncap <= TREE_MAX ? realloc(r->tree, ncap * sizeof(*nt)) : NULL;

				if (!nt) {
					ret = kv_err_set(r->e, -ENOMEM, "%s: too many module files", r->dir);
					break;
				}
				r->tree = nt;
				r->cap_tree = ncap;
			}
			r->tree[r->nr_tree].name = strdup(name);
			r->tree[r->nr_tree].path = strdup(path);
			if (!r->tree[r->nr_tree].name || !r->tree[r->nr_tree].path) {
				free(r->tree[r->nr_tree].name);
				free(r->tree[r->nr_tree].path);
				ret = kv_err_set(r->e, -ENOMEM, "out of memory walking %s", r->dir);
				break;
			}
			r->nr_tree++;
		}
	}
	closedir(d);
	return ret;
}

/* The module's file, or NULL (malloc'd). */
static char *find_path(struct resolver *r, const char *name, int *err)
{
	*err = 0;
	if (r->out->indexed) {
		struct kmod_module *m;
		char *p = NULL;

		if (kmod_module_new_from_name(r->ctx, name, &m) < 0)
			return NULL;
		if (kmod_module_get_path(m))
			p = strdup(kmod_module_get_path(m));
		kmod_module_unref(m);
		return p;
	}
	if (!r->tree_walked) {
		r->tree_walked = true;
		*err = walk(r, r->dir, 0);
		if (*err)
			return NULL;
	}
	/* updates/ overrides the rest, as depmod orders it. */
	const char *best = NULL;
	for (unsigned i = 0; i < r->nr_tree; i++) {
		if (strcmp(r->tree[i].name, name))
			continue;
		if (!best || strstr(r->tree[i].path + strlen(r->dir), "/updates/"))
			best = r->tree[i].path;
	}
	return best ? strdup(best) : NULL;
}

struct modinfo {
	char depends[1024];
	char softpre[512];
	char vermagic[256];
};

static int read_modinfo(struct resolver *r, const char *path, struct modinfo *mi)
{
	struct kmod_list *list = NULL, *it;
	struct kmod_module *m;
	int ret;

	memset(mi, 0, sizeof(*mi));
	ret = kmod_module_new_from_path(r->ctx, path, &m);
	if (ret < 0)
		return kv_err_set(r->e, ret, "%s: libkmod cannot open it: %s", path, strerror(-ret));
	ret = kmod_module_get_info(m, &list);
	if (ret < 0) {
		kmod_module_unref(m);
		return kv_err_set(r->e, ret, "%s: not a readable kernel module (no modinfo): %s", path,
				  strerror(-ret));
	}
	kmod_list_foreach(it, list) {
		const char *k = kmod_module_info_get_key(it), *v = kmod_module_info_get_value(it);

		if (!v)
			continue;
		if (!strcmp(k, "depends"))
			snprintf(mi->depends, sizeof(mi->depends), "%s", v);
		else if (!strcmp(k, "vermagic"))
			snprintf(mi->vermagic, sizeof(mi->vermagic), "%s", v);
		else if (!strcmp(k, "softdep")) {
			/* "pre: a b post: c": the names between pre: and post:. */
			const char *pre = strstr(v, "pre:"), *post = strstr(v, "post:");
			size_t n, at = strlen(mi->softpre);

			if (!pre)
				continue;
			pre += 4;
			n = post && post > pre ? (size_t)(post - pre) : strlen(pre);
			if (at + n + 2 < sizeof(mi->softpre)) {
				mi->softpre[at] = ' ';
				memcpy(mi->softpre + at + 1, pre, n);
				mi->softpre[at + 1 + n] = '\0';
			}
		}
	}
	kmod_module_info_free_list(list);
	kmod_module_unref(m);
	return 0;
}

static int visit(struct resolver *r, const char *given, bool required, const char *why);

/* A soft dependency names a module or an alias (ext4: "crypto-crc32c"):
 * every module that provides it is loaded first, when the tree has it. */
static int visit_soft(struct resolver *r, const char *alias)
{
	char name[256];
	int ret = 0, perr;
	char *p;

	normalize(alias, name, sizeof(name));
	if (is_builtin(r, name))
		return 0;
	p = find_path(r, name, &perr);
	free(p);
	if (perr)
		return perr;
	if (p)
		return (ret = visit(r, name, false, NULL)) < 0 ? ret : 0;
	if (r->out->indexed) {
		struct kmod_list *list = NULL, *it;

		if (kmod_module_new_from_lookup(r->ctx, alias, &list) < 0)
			return 0;
		kmod_list_foreach(it, list) {
			struct kmod_module *m = kmod_module_get_module(it);

			if (!ret && kmod_module_get_path(m))
				ret = visit(r, kmod_module_get_name(m), false, NULL);
			ret = ret < 0 ? ret : 0;
			kmod_module_unref(m);
		}
		kmod_module_unref_list(list);
		return ret;
	}
	/* No alias index: the crypto modules' own aliases (a few dozen files). */
	for (unsigned i = 0; !ret && i < r->nr_tree; i++) {
		struct kmod_list *list = NULL, *it;
		struct kmod_module *m;
		bool match = false;

		if (!strstr(r->tree[i].path + strlen(r->dir), "/crypto/"))
			continue;
		if (kmod_module_new_from_path(r->ctx, r->tree[i].path, &m) < 0)
			continue;
		if (kmod_module_get_info(m, &list) >= 0) {
			kmod_list_foreach(it, list) {
				const char *v = kmod_module_info_get_value(it);

				if (!strcmp(kmod_module_info_get_key(it), "alias") && v && !strcmp(v, alias))
					match = true;
			}
			kmod_module_info_free_list(list);
		}
		kmod_module_unref(m);
		if (match)
			ret = visit(r, r->tree[i].name, false, NULL);
		ret = ret < 0 ? ret : 0;
	}
	return ret;
}

static bool in_order(const struct resolver *r, const char *name)
{
	for (unsigned i = 0; i < r->out->n; i++)
		if (!strcmp(r->out->v[i].name, name))
			return true;
	return false;
}

/* Returns 0 (added, built in, or an optional module skipped), 1 (an
 * optional module or one of its dependencies is missing: skipped) or
 * -errno with @r->e set. */
static int visit(struct resolver *r, const char *given, bool required, const char *why)
{
	char name[256], list[1024], *save = NULL;
	struct modinfo mi;
	int ret, perr;
	char *path;

	normalize(given, name, sizeof(name));
	if (in_order(r, name) || is_builtin(r, name))
		return 0;
	for (unsigned i = 0; i < r->depth; i++)
		if (!strcmp(r->visiting[i], name))
			return kv_err_set(r->e, -ELOOP, "%s: module %s depends on itself (through %s)",
					  r->dir, name, r->visiting[r->depth - 1]);
	if (r->depth == MAX_DEPTH)
		return kv_err_set(r->e, -ELOOP, "%s: module dependencies deeper than %d at %s",
				  r->dir, MAX_DEPTH, name);
	path = find_path(r, name, &perr);
	if (perr)
		return perr;
	if (!path) {
		if (!required) {
			LOG_DEBUG("kernel modules: %s is not in %s: skipped", name, r->dir);
			return 1;
		}
		if (why)
			return kv_err_set(r->e, -ENOENT, "kernel module %s (%s) is missing: it is neither in "
					  "%s nor built into the kernel; give the kernel's own module tree "
					  "with --modules DIR", name, why, r->dir);
		return kv_err_set(r->e, -ENOENT, "kernel module %s (a dependency of %s) is missing from %s",
				  name, r->visiting[r->depth - 1], r->dir);
	}
	ret = read_modinfo(r, path, &mi);
	if (!ret && r->release && mi.vermagic[0]) {
		size_t n = strcspn(mi.vermagic, " ");

		if (n != strlen(r->release) || strncmp(mi.vermagic, r->release, n))
			ret = kv_err_set(r->e, -EINVAL, "%s is built for kernel %.*s, but the kernel is %s: "
					 "give its own module tree with --modules DIR", path, (int)n,
					 mi.vermagic, r->release);
	}
	if (ret) {
		free(path);
		return ret;
	}
	r->visiting[r->depth++] = name;
	snprintf(list, sizeof(list), "%s", mi.softpre);
	for (char *s = strtok_r(list, " \t", &save); s && !ret; s = strtok_r(NULL, " \t", &save))
		ret = visit_soft(r, s);
	ret = ret < 0 ? ret : 0; /* soft: a missing one is fine */
	snprintf(list, sizeof(list), "%s", mi.depends);
	for (char *s = strtok_r(list, ",", &save); s && !ret; s = strtok_r(NULL, ",", &save))
		ret = visit(r, s, required, NULL);
	r->depth--;
	if (ret) {
		free(path);
		return ret;
	}
	if (r->out->n == KMODS_MAX) {
		free(path);
		return kv_err_set(r->e, -E2BIG, "more than %d kernel modules needed", KMODS_MAX);
	}
	r->out->v[r->out->n].name = strdup(name);
	r->out->v[r->out->n].path = path;
	if (!r->out->v[r->out->n].name)
		return kv_err_set(r->e, -ENOMEM, "out of memory");
	r->out->n++;
	return 0;
}

int kmods_resolve(const char *dir, const char *release, const struct kmod_want *want,
		  unsigned nr_want, struct kmods *out, struct kv_err *e)
{
	static const char *const no_config[] = { NULL };
	struct resolver r = { .dir = dir, .release = release, .out = out, .e = e };
	char index[PATH_MAX];
	struct stat st;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (stat(dir, &st))
		return kv_err_set(e, -errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return kv_err_set(e, -ENOTDIR, "%s: not a folder", dir);
	snprintf(index, sizeof(index), "%s/modules.dep.bin", dir);
	out->indexed = !access(index, R_OK);
	/* No modprobe.d: the host's configuration is not the guest's. */
	r.ctx = kmod_new(dir, no_config);
	if (!r.ctx)
		return kv_err_set(e, -ENOMEM, "libkmod: cannot open %s", dir);
	kmod_set_log_fn(r.ctx, kmod_log, NULL);
	if (out->indexed && kmod_load_resources(r.ctx) < 0) {
		LOG_DEBUG("kernel modules: %s: libkmod cannot load its index; walking the tree", dir);
		out->indexed = false;
	}
	ret = read_builtin(&r);
	for (unsigned i = 0; !ret && i < nr_want; i++) {
		char name[256];

		normalize(want[i].name, name, sizeof(name));
		if (is_builtin(&r, name)) {
			out->builtin++;
			continue;
		}
		ret = visit(&r, name, want[i].required, want[i].why ? want[i].why : "needed");
		ret = ret < 0 ? ret : 0;
	}
	for (unsigned i = 0; i < r.nr_builtin; i++)
		free(r.builtin[i]);
	free(r.builtin);
	for (unsigned i = 0; i < r.nr_tree; i++) {
		free(r.tree[i].name);
		free(r.tree[i].path);
	}
	free(r.tree);
	kmod_unref(r.ctx);
	if (ret)
		kmods_free(out);
	return ret;
}

void kmods_free(struct kmods *m)
{
	for (unsigned i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].path);
	}
	m->n = 0;
}
