/* kvmini's built-in guest init: PID 1 of the initramfs kvmini builds
 * (guest-boot/initramfs.c). A static program: it loads the modules kvmini
 * listed, mounts the root the kernel command line names, carries out the
 * mount plan (init_plan.c), switches to the root and then runs the
 * system's init, or --exec's command with the control-port protocol of
 * tools/mkinitramfs.sh's /init (devices/control_port.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/init_conf.h"
#include "kvmini/init_plan.h"

/* The control port (include/kvmini/layout.h, devices/control_port.c). */
#define CTL_PORT        0x5a0
#define CTL_EVENT       0
#define CTL_STATUS      1
#define CTL_EV_UP       1
#define CTL_EV_STARTED  2

#define CONF_PATH   "/kvmini/init.conf"
#define EXEC_PATH   "/kvmini/exec"
#define MODULES_DIR "/kvmini/modules"
#define ROOT_WAIT_S 30

static bool exec_mode;
static int exec_err_fd = -1; /* ttyS2 under --exec: the user sees it even with --quiet */
static bool have_ports;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, "kvmini-init: ", 13) >= 0 && write(2, line, (size_t)n) >= 0) {
		/* the console is best effort */
	}
	if (exec_err_fd >= 0 && write(exec_err_fd, "kvmini-init: ", 13) >= 0 &&
	    write(exec_err_fd, line, (size_t)n) >= 0)
		tcdrain(exec_err_fd);
}

static void ctl(unsigned reg, unsigned char v)
{
	if (have_ports)
		outb(v, CTL_PORT + reg);
}

static void __attribute__((noreturn)) power_off(void)
{
	sync();
	kill(-1, SIGKILL);
	/* A disk root mounted rw goes back to read-only: clean at power-off. */
	mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

/* Under --exec kvmini then exits 123 (no status) with the message on its
 * stderr; otherwise PID 1 exits, the kernel panics, and kvmini sees the
 * panic through pvpanic (121). */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("fatal: %s", msg);
	if (exec_mode)
		power_off();
	exit(1);
}

/* Reads a whole small file into a malloc'd, NUL-terminated buffer. */
static char *slurp(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 4096;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	while (buf) {
		ssize_t r;

		if (n == cap) {
			char *nb = cap < max ? realloc(buf, (cap *= 2) + 1) : NULL;

			if (!nb) {
				free(buf);
				buf = NULL;
				errno = EFBIG;
				break;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0) {
			buf[n] = '\0';
			*len = n;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	return buf;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = data;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t r = write(fd, p, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;
			close(fd);
			return e;
		}
		p += r;
		len -= (size_t)r;
	}
	return close(fd) ? -errno : 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PLAN_PATH_MAX];

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	chmod(buf, mode); /* past the umask */
	return 0;
}

/* The root with no rootfstype=: ext4 (which kvmini loads then), else
 * each block file system the kernel has. */
static int mount_any(const struct plan_op *op)
{
	size_t len;
	char *fs;
	int r = -ENODEV;

	if (!mount(op->src, op->dst, "ext4", op->flags, op->data[0] ? op->data : NULL))
		return 0;
	fs = slurp("/proc/filesystems", 1 << 16, &len);
	for (char *line = fs ? strtok(fs, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "nodev", 5))
			continue;
		while (*line == '\t' || *line == ' ')
			line++;
		if (!mount(op->src, op->dst, line, op->flags, op->data[0] ? op->data : NULL))
			return free(fs), 0;
		if (errno != EINVAL)
			r = -errno;
	}
	free(fs);
	return r;
}

static int run_op(const struct plan_op *op)
{
	switch (op->kind) {
	case PLAN_MKDIR:
		return mkdir_p(op->dst, (mode_t)op->flags);
	case PLAN_MOUNT:
		if (!op->fstype[0])
			return mount_any(op);
		return mount(op->src, op->dst, op->fstype, op->flags, op->data[0] ? op->data : NULL) ? -errno : 0;
	case PLAN_MOVE:
		return mount(op->src, op->dst, NULL, MS_MOVE, NULL) ? -errno : 0;
	case PLAN_BIND_RO:
		if (mount(op->src, op->dst, NULL, MS_BIND, NULL))
			return -errno;
		return mount(NULL, op->dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) ? -errno : 0;
	case PLAN_WRITE:
		return write_file(op->dst, op->data, strlen(op->data), 0644);
	}
	return -EINVAL;
}

static void run_plan(const struct plan_op *ops, int n)
{
	for (int i = 0; i < n; i++) {
		const struct plan_op *op = &ops[i];
		struct stat st;
		int r;

		if ((op->opt & PLAN_IF_EXISTS) && stat(op->dst, &st))
			continue;
		r = run_op(op);
		if (!r)
			continue;
		if (op->opt & PLAN_BEST_EFFORT) {
			say("%s stays as the root has it: %s %s: %s", op->dst + strlen(PLAN_NEWROOT),
			    op->fstype, op->dst, strerror(-r));
			continue;
		}
		if (op->kind == PLAN_MOUNT && !strcmp(op->dst, PLAN_NEWROOT))
			die("cannot mount the root %s (%s) on %s: %s", op->src,
			    op->fstype[0] ? op->fstype : "any file system", op->dst, strerror(-r));
		die("mount plan step %d (%s %s -> %s %s): %s", i, op->kind == PLAN_MOVE ? "move" :
		    op->kind == PLAN_MKDIR ? "mkdir" : op->kind == PLAN_WRITE ? "write" : "mount",
		    op->src, op->dst, op->data[0] && op->kind != PLAN_WRITE ? op->data : "", strerror(-r));
	}
}

static void load_modules(const struct init_conf *c)
{
	for (unsigned i = 0; i < c->nr_modules; i++) {
		char path[512];
		int fd;

		snprintf(path, sizeof(path), MODULES_DIR "/%s", c->modules[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			say("module %s: %s", path, strerror(errno));
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
			say("module %s: %s", c->modules[i], strerror(errno));
		close(fd);
	}
}

/* fds 0-2 on the console; with console=hvc0 it exists only once
 * virtio_console is loaded, so this runs again after the modules. */
static void open_console(void)
{
	int fd;

	if (fcntl(0, F_GETFD) >= 0 && fcntl(1, F_GETFD) >= 0 && fcntl(2, F_GETFD) >= 0)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) < 0 || fd > 2)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

static void wait_for_root(const char *dev)
{
	struct stat st;

	for (int i = 0; i < ROOT_WAIT_S * 100; i++) {
		if (!stat(dev, &st))
			return;
		usleep(10000);
	}
	die("the root device %s did not appear within %d s (is a --disk given, and its driver in "
	    "the module list?)", dev, ROOT_WAIT_S);
}

/* Frees the initramfs's memory: everything on the root file system but
 * the new root (another file system) goes. */
static void delete_tree(int dirfd, dev_t rootdev)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (!d) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		bool dir;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != rootdev)
			continue;
		dir = S_ISDIR(st.st_mode);
		if (dir) {
			int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				delete_tree(fd, rootdev);
		}
		unlinkat(dirfd, de->d_name, dir ? AT_REMOVEDIR : 0);
	}
	closedir(d);
}

static void switch_root(void)
{
	struct stat st;
	int fd;

	if (chdir(PLAN_NEWROOT))
		die("chdir %s: %s", PLAN_NEWROOT, strerror(errno));
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && !fstat(fd, &st))
		delete_tree(fd, st.st_dev);
	else if (fd >= 0)
		close(fd);
	if (mount(".", "/", NULL, MS_MOVE, NULL))
		die("moving the root to /: %s", strerror(errno));
	if (chroot(".") || chdir("/"))
		die("chroot into the root: %s", strerror(errno));
}

static void set_env(const struct init_conf *c)
{
	clearenv();
	setenv("HOME", c->home ? c->home : "/root", 1);
	setenv("PATH", c->path ? c->path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("TERM", c->term ? c->term : "linux", 1);
	setenv("USER", "root", 1);
	setenv("LOGNAME", "root", 1);
}

static int open_raw_tty(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (!tcgetattr(fd, &t)) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

/* --exec: the command with stdin /dev/null, stdout COM2, stderr COM3,
 * its status on the control port, then power off. */
static void __attribute__((noreturn)) run_command(const struct init_conf *c, const char *cmd, size_t len)
{
	int out = open_raw_tty("/dev/ttyS1"), err = exec_err_fd, r, status = 0;
	pid_t pid;

	if (out < 0)
		die("cannot open /dev/ttyS1 (the command's stdout): %s", strerror(errno));
	r = mkdir_p("/run/kvmini", 0755);
	if (!r)
		r = write_file("/run/kvmini/exec", cmd, len, 0600);
	if (r)
		die("cannot write the command to /run/kvmini/exec: %s", strerror(-r));
	set_env(c);
	ctl(CTL_EVENT, CTL_EV_STARTED);
	pid = fork();
	if (pid == 0) {
		const char *home = getenv("HOME");
		int null = open("/dev/null", O_RDONLY);

		setsid();
		dup2(null, 0);
		dup2(out, 1);
		dup2(err, 2);
		if (!c->cwd || chdir(c->cwd)) {
			if (c->cwd && c->cwd_strict) {
				dprintf(2, "kvmini-init: working directory %s: %s in the guest\n", c->cwd,
					strerror(errno));
				_exit(126);
			}
			if (chdir(home))
				chdir("/");
		}
		execl("/bin/sh", "sh", "/run/kvmini/exec", (char *)NULL);
		dprintf(2, "kvmini-init: cannot run /bin/sh of the root: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		die("fork: %s", strerror(errno));
	for (;;) {
		int st;
		pid_t w = wait(&st);

		if (w == pid) {
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (w < 0 && errno != EINTR)
			die("wait: %s", strerror(errno));
	}
	/* Everything the command wrote is out before its status. */
	tcdrain(out);
	tcdrain(err);
	ctl(CTL_STATUS, (unsigned char)status);
	power_off();
}

/* The console's real tty (/sys/class/tty/console/active names it), for a
 * shell with job control. */
static void controlling_tty(void)
{
	size_t len;
	char *active = slurp("/sys/class/tty/console/active", 4096, &len);
	char path[300], *last;
	int fd;

	if (!active)
		return;
	active[strcspn(active, "\n")] = '\0';
	last = strrchr(active, ' ');
	last = last ? last + 1 : active;
	snprintf(path, sizeof(path), "/dev/%s", last);
	free(active);
	setsid();
	fd = open(path, O_RDWR);
	if (fd < 0)
		return;
	ioctl(fd, TIOCSCTTY, 1);
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
}

static void __attribute__((noreturn)) run_system(const struct init_conf *c, const struct kcmdline *k)
{
	const char *init = k->init[0] ? k->init : "/sbin/init";
	pid_t pid;

	if (!access(init, X_OK)) {
		execl(init, init, (char *)NULL);
		say("cannot run %s: %s", init, strerror(errno));
	} else if (k->init[0]) {
		say("init=%s: %s", init, strerror(errno));
	}
	/* No system init: a shell, and power off when it ends. */
	set_env(c);
	pid = fork();
	if (pid == 0) {
		controlling_tty();
		if (chdir(getenv("HOME")))
			chdir("/");
		execl("/bin/sh", "-sh", (char *)NULL);
		say("cannot run /bin/sh: %s", strerror(errno));
		_exit(127);
	}
	while (pid > 0) {
		pid_t w = wait(NULL);

		if (w == pid || (w < 0 && errno != EINTR))
			break;
	}
	power_off();
}

int main(void)
{
	static struct plan_op ops[PLAN_MAX_OPS];
	char err[512], *conf_text, *cmdline, *cmd = NULL;
	struct init_conf conf;
	struct kcmdline k;
	size_t len, cmd_len = 0;
	int n;

	umask(022);
	n = plan_early(ops, PLAN_MAX_OPS);
	if (n < 0)
		die("early mount plan: %s", strerror(-n));
	run_plan(ops, n);
	open_console();
	have_ports = !ioperm(CTL_PORT, 2, 1);
	ctl(CTL_EVENT, CTL_EV_UP);
	if (write(1, "KVMINI-USERSPACE-UP\n", 20) < 0) {
		/* no console: fine */
	}

	conf_text = slurp(CONF_PATH, INIT_CONF_MAX_SIZE, &len);
	if (!conf_text)
		die("cannot read %s: %s", CONF_PATH, strerror(errno));
	if (init_conf_parse(conf_text, len, &conf, err, sizeof(err)))
		die("%s: %s", CONF_PATH, err);
	exec_mode = conf.exec;
	if (exec_mode) {
		exec_err_fd = open_raw_tty("/dev/ttyS2");
		cmd = slurp(EXEC_PATH, 64u << 20, &cmd_len);
		if (!cmd)
			die("cannot read the command %s: %s", EXEC_PATH, strerror(errno));
	}
	load_modules(&conf);
	open_console();

	cmdline = slurp("/proc/cmdline", 1 << 16, &len);
	if (!cmdline)
		die("cannot read /proc/cmdline: %s", strerror(errno));
	if (kcmdline_parse(cmdline, &k, err, sizeof(err)))
		die("kernel command line: %s", err);
	free(cmdline);

	struct plan_in in = {
		.root = k.root, .fstype = k.fstype, .rootflags = k.flags, .rw = k.rw,
		.overlays = conf.overlays, .nr_overlays = conf.nr_overlays, .hostname = conf.hostname,
	};
	n = plan_root(&in, ops, PLAN_MAX_OPS, err, sizeof(err));
	if (n < 0)
		die("%s", err);
	if (!kcmdline_root_is_virtiofs(&k))
		wait_for_root(k.root);
	run_plan(ops, n);
	switch_root();
	if (!k.rw && sethostname(conf.hostname ? conf.hostname : "kvmini",
				 strlen(conf.hostname ? conf.hostname : "kvmini")))
		say("sethostname: %s", strerror(errno));
	if (exec_mode)
		run_command(&conf, cmd, cmd_len);
	run_system(&conf, &k);
}
