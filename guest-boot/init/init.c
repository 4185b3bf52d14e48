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
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/init_conf.h"
#include "kvmini/init_plan.h"
#include "init_util.h"

#define CONF_PATH   "/kvmini/init.conf"
#define EXEC_PATH   "/kvmini/exec"
#define MODULES_DIR "/kvmini/modules"
#define ROOT_WAIT_S 30

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

/* A FUSE mount reads ahead 128 KiB at a time, so a large file costs a
 * request (an exit, a worker hand-off, an interrupt) per 128 KiB; kvmini
 * serves up to 1 MiB a request (9p reads ahead one msize the same way).
 * The mount's bdi is named by its device number. Best effort. */
static void virtiofs_readahead(const char *dir)
{
	char path[64];
	struct stat st;

	if (stat(dir, &st))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	if (write_file(path, "1024", 4, 0644))
		say("%s: read-ahead stays at the kernel's default (%s)", dir, path);
}

static int run_op(const struct plan_op *op)
{
	switch (op->kind) {
	case PLAN_MKDIR:
		return mkdir_p(op->dst, (mode_t)op->flags);
	case PLAN_MOUNT:
		if (!op->fstype[0])
			return mount_any(op);
		if (mount(op->src, op->dst, op->fstype, op->flags, op->data[0] ? op->data : NULL))
			return -errno;
		if (!strcmp(op->fstype, "virtiofs"))
			virtiofs_readahead(op->dst);
		return 0;
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
			    op->kind == PLAN_MKDIR ? "mkdir" : op->fstype, op->dst, strerror(-r));
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

int main(int argc, char **argv)
{
	static struct plan_op ops[PLAN_MAX_OPS];
	char err[512], *conf_text, *conf_copy, *cmdline, *cmd = NULL;
	struct init_conf conf;
	struct kcmdline k;
	size_t len, conf_len, cmd_len = 0;
	int n;

	if (argc > 1 && !strcmp(argv[1], EXEC_SERVICE_ARG))
		return exec_service_main();
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
	conf_copy = malloc(len + 1); /* the parser cuts conf_text up; system mode passes it on */
	if (!conf_copy)
		die("out of memory");
	memcpy(conf_copy, conf_text, len + 1);
	conf_len = len;
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
	net_configure(k.dhcp);

	struct plan_in in = {
		.root = k.root, .fstype = k.fstype, .rootflags = k.flags, .rw = k.rw,
		.overlays = conf.overlays, .nr_overlays = conf.nr_overlays, .hostname = conf.hostname,
		.shares = k.shares,
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
	if (exec_mode && !exec_under_system(&conf, &k))
		run_command(&conf, cmd, cmd_len);
	if (exec_mode)
		exec_prepare_system(conf_copy, conf_len, cmd, cmd_len);
	run_system(&conf, &k);
}
