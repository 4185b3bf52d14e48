/* The built-in init's inputs: its config file and the kernel command
 * line (see include/kvmini/init_conf.h). Linked into kvmini (writer,
 * command line) and into the init (parser); unit-tested on the host. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/init_conf.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int set_bool(const char *v, bool *out)
{
	if (!strcmp(v, "0") || !strcmp(v, "1")) {
		*out = v[0] == '1';
		return 0;
	}
	return -EINVAL;
}

static const char *const exec_boot_names[] = { "auto", "direct", "system" };

int exec_boot_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, exec_boot_names[i]))
			return i;
	return -EINVAL;
}

const char *exec_boot_name(enum exec_boot b)
{
	return (unsigned)b < 3 ? exec_boot_names[b] : "auto";
}

static int take_line(struct init_conf *c, char *key, char *val, unsigned lineno, char *err, size_t errlen)
{
	static const struct { const char *key; size_t off; } strs[] = {
		{ "cwd", offsetof(struct init_conf, cwd) },
		{ "home", offsetof(struct init_conf, home) },
		{ "path", offsetof(struct init_conf, path) },
		{ "term", offsetof(struct init_conf, term) },
		{ "hostname", offsetof(struct init_conf, hostname) },
	};

	if (!strcmp(key, "module")) {
		if (c->nr_modules == INIT_CONF_MAX_MODULES)
			return fail(err, errlen, -EINVAL, "line %u: more than %d modules", lineno,
				    INIT_CONF_MAX_MODULES);
		if (!*val || strchr(val, '/'))
			return fail(err, errlen, -EINVAL, "line %u: bad module file name '%s'", lineno, val);
		c->modules[c->nr_modules++] = val;
		return 0;
	}
	if (!strcmp(key, "overlay")) {
		if (c->nr_overlays == INIT_CONF_MAX_OVERLAYS)
			return fail(err, errlen, -EINVAL, "line %u: more than %d overlays", lineno,
				    INIT_CONF_MAX_OVERLAYS);
		c->overlays[c->nr_overlays++] = val;
		return 0;
	}
	if (!strcmp(key, "exec_boot")) {
		int b = exec_boot_parse(val);

		if (b < 0)
			return fail(err, errlen, -EINVAL, "line %u: exec_boot takes auto, direct or system, "
				    "not '%s'", lineno, val);
		c->exec_boot = b;
		return 0;
	}
	if (!strcmp(key, "exec") || !strcmp(key, "cwd_strict")) {
		if (set_bool(val, !strcmp(key, "exec") ? &c->exec : &c->cwd_strict))
			return fail(err, errlen, -EINVAL, "line %u: %s takes 0 or 1, not '%s'", lineno, key, val);
		return 0;
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (!strcmp(key, strs[i].key)) {
			*(const char **)((char *)c + strs[i].off) = val;
			return 0;
		}
	}
	c->ignored++;
	return 0;
}

int init_conf_parse(char *text, size_t len, struct init_conf *c, char *err, size_t errlen)
{
	size_t mlen = strlen(INIT_CONF_MAGIC);
	unsigned lineno = 1;
	char *p, *end = text + len;

	memset(c, 0, sizeof(*c));
	if (memchr(text, '\0', len))
		return fail(err, errlen, -EINVAL, "the config holds a NUL byte");
	if (len < mlen || memcmp(text, INIT_CONF_MAGIC, mlen) || (len > mlen && text[mlen] != '\n'))
		return fail(err, errlen, -EINVAL, "the config does not start with \"%s\"", INIT_CONF_MAGIC);
	p = text + mlen;
	if (p < end)
		p++; /* the magic line's newline */
	while (p < end) {
		char *nl, *sp, *key;
		int r;

		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			return fail(err, errlen, -EINVAL, "line %u: no newline at its end", lineno);
		*nl = '\0';
		key = p;
		p = nl + 1;
		if (!*key || *key == '#')
			continue;
		sp = strchr(key, ' ');
		if (!sp)
			return fail(err, errlen, -EINVAL, "line %u: \"KEY VALUE\" expected", lineno);
		*sp = '\0';
		for (char *k = key; *k; k++)
			if ((*k < 'a' || *k > 'z') && *k != '_')
				return fail(err, errlen, -EINVAL, "line %u: bad key '%s'", lineno, key);
		if (!*key)
			return fail(err, errlen, -EINVAL, "line %u: empty key", lineno);
		r = take_line(c, key, sp + 1, lineno, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* Appends "KEY VALUE\n"; a NULL value writes nothing. */
static int put(char *buf, size_t cap, size_t *at, const char *key, const char *val,
	       char *err, size_t errlen)
{
	int n;

	if (!val)
		return 0;
	if (strchr(val, '\n'))
		return fail(err, errlen, -EINVAL, "%s '%s': a newline cannot be passed to the guest", key, val);
	n = snprintf(buf + *at, cap - *at, "%s %s\n", key, val);
	if (n < 0 || (size_t)n >= cap - *at)
		return fail(err, errlen, -ENOSPC, "the init config is larger than %zu bytes", cap);
	*at += (size_t)n;
	return 0;
}

int init_conf_write(const struct init_conf *c, char *buf, size_t cap, char *err, size_t errlen)
{
	size_t at = 0;
	int r = 0;

	if (!cap)
		return fail(err, errlen, -ENOSPC, "no room for the init config");
	buf[0] = '\0';
	r = put(buf, cap, &at, "kvmini-init", "1", err, errlen);
	for (unsigned i = 0; !r && i < c->nr_modules; i++) {
		const char *m = c->modules[i];

		if (!*m || strchr(m, '/'))
			return fail(err, errlen, -EINVAL, "module file name '%s' is empty or has a '/'", m);
		r = put(buf, cap, &at, "module", m, err, errlen);
	}
	for (unsigned i = 0; !r && i < c->nr_overlays; i++) {
		if (c->overlays[i][0] != '/')
			return fail(err, errlen, -EINVAL, "overlay '%s': not an absolute path", c->overlays[i]);
		r = put(buf, cap, &at, "overlay", c->overlays[i], err, errlen);
	}
	if (!r && c->cwd && c->cwd[0] != '/')
		return fail(err, errlen, -EINVAL, "working directory '%s': not an absolute path", c->cwd);
	if (!r)
		r = put(buf, cap, &at, "exec", c->exec ? "1" : "0", err, errlen);
	if (!r)
		r = put(buf, cap, &at, "exec_boot", exec_boot_name(c->exec_boot), err, errlen);
	if (!r)
		r = put(buf, cap, &at, "cwd", c->cwd, err, errlen);
	if (!r)
		r = put(buf, cap, &at, "cwd_strict", c->cwd_strict ? "1" : "0", err, errlen);
	if (!r)
		r = put(buf, cap, &at, "home", c->home, err, errlen);
	if (!r)
		r = put(buf, cap, &at, "path", c->path, err, errlen);
	if (!r)
		r = put(buf, cap, &at, "term", c->term, err, errlen);
	if (!r)
		r = put(buf, cap, &at, "hostname", c->hostname, err, errlen);
	return r ? r : (int)at;
}

/* Copies @val (@n bytes) into @dst of @cap; -ENAMETOOLONG names @what. */
static int copy_value(char *dst, size_t cap, const char *val, size_t n, const char *what,
		      char *err, size_t errlen)
{
	if (n >= cap)
		return fail(err, errlen, -ENAMETOOLONG, "%s= is longer than %zu bytes", what, cap - 1);
	memcpy(dst, val, n);
	dst[n] = '\0';
	return 0;
}

int kcmdline_parse(const char *cmdline, struct kcmdline *k, char *err, size_t errlen)
{
	char word[4096];
	const char *p = cmdline;

	memset(k, 0, sizeof(*k));
	while (*p) {
		size_t n = 0;
		bool quoted = false;
		char *eq;
		int r = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		/* One word; double quotes group spaces and are dropped. */
		while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n'))) {
			if (*p == '"')
				quoted = !quoted;
			else if (n + 1 < sizeof(word))
				word[n++] = *p;
			p++;
		}
		word[n] = '\0';
		if (!strcmp(word, "--"))
			break; /* the rest is init's */
		if (!strcmp(word, "ro") || !strcmp(word, "rw")) {
			k->rw = word[1] == 'w';
			continue;
		}
		eq = strchr(word, '=');
		if (!eq)
			continue;
		*eq++ = '\0';
		if (!strcmp(word, "root"))
			r = copy_value(k->root, sizeof(k->root), eq, strlen(eq), "root", err, errlen);
		else if (!strcmp(word, "rootfstype"))
			r = copy_value(k->fstype, sizeof(k->fstype), eq, strlen(eq), "rootfstype", err, errlen);
		else if (!strcmp(word, "rootflags"))
			r = copy_value(k->flags, sizeof(k->flags), eq, strlen(eq), "rootflags", err, errlen);
		else if (!strcmp(word, "init"))
			r = copy_value(k->init, sizeof(k->init), eq, strlen(eq), "init", err, errlen);
		else if (!strcmp(word, "kvmini.dhcp"))
			r = copy_value(k->dhcp, sizeof(k->dhcp), eq, strlen(eq), "kvmini.dhcp", err, errlen);
		else if (!strcmp(word, "kvmini.shares"))
			r = copy_value(k->shares, sizeof(k->shares), eq, strlen(eq), "kvmini.shares", err,
				       errlen);
		if (r)
			return r;
	}
	return 0;
}

bool kcmdline_root_is_virtiofs(const struct kcmdline *k)
{
	return !strcmp(k->fstype, "virtiofs");
}
