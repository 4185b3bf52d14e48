/* The built-in init's small helpers (guest-boot/init/init_util.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "kvmini/init_plan.h"
#include "init_util.h"

bool exec_mode;
int exec_err_fd = -1;
bool have_ports;

void say(const char *fmt, ...)
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

void ctl(unsigned reg, unsigned char v)
{
	if (have_ports)
		outb(v, CTL_PORT + reg);
}

void power_off(void)
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
void die(const char *fmt, ...)
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
char *slurp(const char *path, size_t max, size_t *len)
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

int write_file(const char *path, const void *data, size_t len, mode_t mode)
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

int mkdir_p(const char *path, mode_t mode)
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

void set_env(const struct init_conf *c)
{
	clearenv();
	setenv("HOME", c->home ? c->home : "/root", 1);
	setenv("PATH", c->path ? c->path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("TERM", c->term ? c->term : "linux", 1);
	setenv("USER", "root", 1);
	setenv("LOGNAME", "root", 1);
}

int open_raw_tty(const char *path)
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

