/* What kvmini tells its built-in guest init (guest-boot/init/), and what
 * the init reads from the kernel command line. Shared by both sides:
 * kvmini writes the config into the initramfs it builds
 * (guest-boot/initramfs.c), the init parses it in the guest. Pure
 * functions on caller buffers, no allocation, no kvmini headers: the init
 * is a separate static program.
 *
 * The config, /kvmini/init.conf, is text:
 *   line 1:  "kvmini-init 1"            (format name and version)
 *   then:    "KEY VALUE" lines          (KEY [a-z_]+, one space, VALUE
 *                                        to the end of the line, taken
 *                                        verbatim; no NUL, no newline)
 *   keys:    module NAME.ko   one per module, in load order; the files
 *                             are /kvmini/modules/NAME.ko (plain ELF)
 *            exec 0|1         1: run /kvmini/exec (the command, byte for
 *                             byte) and report its status
 *            exec_boot auto|direct|system
 *                             direct: the command runs as soon as the
 *                             root is mounted; system: the root's own
 *                             init (systemd) boots first and runs it as
 *                             a service, then powers off cleanly; auto
 *                             (the default): system for a disk root
 *                             whose /sbin/init is systemd, else direct
 *            cwd PATH         the command's working directory
 *            cwd_strict 0|1   1: a missing cwd fails the command (126);
 *                             0: fall back to HOME, then /
 *            home PATH, path STR, term STR   the command's HOME, PATH, TERM
 *            hostname NAME    the guest's host name
 *            overlay PATH     a folder made writable by an overlayfs with
 *                             a tmpfs upper layer (repeatable)
 *   Blank lines and lines starting with '#' are ignored; an unknown key
 *   is ignored by the init (a newer kvmini may add keys), a repeated
 *   single key takes the last value. */
#ifndef KVMINI_INIT_CONF_H
#define KVMINI_INIT_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define INIT_CONF_MAGIC "kvmini-init 1"
#define INIT_CONF_MAX_MODULES 96
#define INIT_CONF_MAX_OVERLAYS 8
#define INIT_CONF_MAX_SIZE 65536

enum exec_boot { EXEC_BOOT_AUTO, EXEC_BOOT_DIRECT, EXEC_BOOT_SYSTEM };

/* "auto", "direct", "system" -> 0..2; -EINVAL otherwise. */
int exec_boot_parse(const char *s);
const char *exec_boot_name(enum exec_boot b);

struct init_conf {
	const char *modules[INIT_CONF_MAX_MODULES];
	unsigned nr_modules;
	const char *overlays[INIT_CONF_MAX_OVERLAYS];
	unsigned nr_overlays;
	bool exec;
	enum exec_boot exec_boot;
	const char *cwd;       /* NULL: HOME */
	bool cwd_strict;
	const char *home;      /* NULL: /root */
	const char *path;      /* NULL: a standard PATH */
	const char *term;      /* NULL: linux */
	const char *hostname;  /* NULL: kvmini */
	unsigned ignored;      /* unknown keys seen */
};

/* Parses @text (@len bytes, modified in place: the pointers in @c point
 * into it). Returns 0, or -EINVAL with a message in @err naming the line. */
int init_conf_parse(char *text, size_t len, struct init_conf *c, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Writes @c in the format above to @buf. Returns the length, -EINVAL
 * (a value with a newline or NUL, an empty or absolute module name, a
 * module name with '/', a relative overlay/cwd), or -ENOSPC. */
int init_conf_write(const struct init_conf *c, char *buf, size_t cap, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The kernel command line, as the init uses it. */
#define KCMD_VALUE_MAX 256
struct kcmdline {
	char root[KCMD_VALUE_MAX];      /* root=: /dev/NAME, or a virtiofs tag; "" when absent */
	char fstype[64];                /* rootfstype=; "" when absent */
	char flags[KCMD_VALUE_MAX];     /* rootflags=: mount data */
	char init[KCMD_VALUE_MAX];      /* init=; "" when absent */
	char dhcp[KCMD_VALUE_MAX];      /* kvmini.dhcp=MAC[,MAC]: the --net user NICs */
	char shares[KCMD_VALUE_MAX];    /* kvmini.shares=TAG[:ro],...: the --share tags */
	bool rw;                        /* the last of ro/rw; read-only by default */
};

/* Parses a kernel command line (words separated by spaces, "double
 * quotes" around a value as the kernel allows). Returns 0, or
 * -ENAMETOOLONG when a value does not fit (naming it in @err). */
int kcmdline_parse(const char *cmdline, struct kcmdline *k, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* True when the root names a disk (/dev/...), false for a virtiofs tag. */
bool kcmdline_root_is_virtiofs(const struct kcmdline *k);

#endif
