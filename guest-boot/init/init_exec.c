/* --exec in the built-in init: the command runs either right after the
 * root is mounted (direct), or as a service of the root's own systemd
 * once the system is up (system), and its status goes to kvmini's
 * control port (devices/control_port.c) either way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "init_util.h"

#define RUN_DIR      "/run/kvmini"
#define RUN_EXEC     RUN_DIR "/exec"
#define RUN_CONF     RUN_DIR "/init.conf"
#define RUN_SELF     RUN_DIR "/kvmini-init"
#define UNIT_DIR     "/run/systemd/system"
#define UNIT_NAME    "kvmini-exec.service"

/* Runs sh @script with stdin /dev/null, stdout COM2 (@out), stderr COM3,
 * in the configured directory; returns its status once everything it
 * wrote is out, and reports it on the control port. */
static int run_and_report(const struct init_conf *c, int out, const char *script)
{
	int err = exec_err_fd, status = 0;
	pid_t pid;

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
		execl("/bin/sh", "sh", script, (char *)NULL);
		dprintf(2, "kvmini-init: cannot run /bin/sh of the root: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		die("fork: %s", strerror(errno));
	for (;;) {
		int st;
		pid_t w = wait(&st); /* PID 1 in direct mode: reaps orphans too */

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
	return status;
}

/* direct: the command with stdin /dev/null, stdout COM2, stderr COM3,
 * its status on the control port, then power off. */
void run_command(const struct init_conf *c, const char *cmd, size_t len)
{
	int out = open_raw_tty("/dev/ttyS1"), r;

	if (out < 0)
		die("cannot open /dev/ttyS1 (the command's stdout): %s", strerror(errno));
	r = mkdir_p(RUN_DIR, 0755);
	if (!r)
		r = write_file(RUN_EXEC, cmd, len, 0600);
	if (r)
		die("cannot write the command to " RUN_EXEC ": %s", strerror(-r));
	run_and_report(c, out, RUN_EXEC);
	power_off();
}

bool exec_under_system(const struct init_conf *c, const struct kcmdline *k)
{
	char target[PATH_MAX];

	if (c->exec_boot != EXEC_BOOT_AUTO)
		return c->exec_boot == EXEC_BOOT_SYSTEM;
	if (kcmdline_root_is_virtiofs(k) || k->init[0])
		return false;
	/* /sbin/init -> /lib/systemd/systemd, as systemd-sysv installs it. */
	if (!realpath("/sbin/init", target))
		return false;
	return strstr(target, "systemd") != NULL;
}

static int copy_self(const char *dst)
{
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), out, r = 0;
	struct stat st;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0 || fstat(in, &st)) {
		r = -errno;
	} else {
		off_t off = 0;

		while (!r && off < st.st_size)
			if (sendfile(out, in, &off, (size_t)(st.st_size - off)) <= 0)
				r = errno ? -errno : -EIO;
	}
	if (out >= 0 && close(out) && !r)
		r = -errno;
	close(in);
	return r;
}

/* Ordered after multi-user.target, so the command sees a booted system;
 * Type=exec: its start job ends when it runs, so `systemctl
 * is-system-running --wait` in the command does not wait for itself. */
static const char unit_text[] =
	"# written by kvmini's init for --exec (in /run: the root is not changed)\n"
	"[Unit]\n"
	"Description=kvmini --exec command\n"
	"After=multi-user.target\n"
	"\n"
	"[Service]\n"
	"Type=exec\n"
	"ExecStart=" RUN_SELF " " EXEC_SERVICE_ARG "\n"
	"StandardInput=null\n"
	"StandardOutput=journal+console\n"
	"TimeoutStopSec=10\n";

void exec_prepare_system(const char *conf_text, size_t conf_len, const char *cmd, size_t len)
{
	const char *step = RUN_DIR;
	int r = mkdir_p(RUN_DIR, 0755);

	if (!r && !(r = write_file(RUN_EXEC, cmd, len, 0600)))
		step = RUN_CONF;
	if (!r && !(r = write_file(RUN_CONF, conf_text, conf_len, 0600)))
		step = RUN_SELF;
	if (!r && !(r = copy_self(RUN_SELF)))
		step = UNIT_DIR "/multi-user.target.wants";
	if (!r && !(r = mkdir_p(UNIT_DIR "/multi-user.target.wants", 0755)))
		step = UNIT_DIR "/" UNIT_NAME;
	if (!r && !(r = write_file(UNIT_DIR "/" UNIT_NAME, unit_text, sizeof(unit_text) - 1, 0644)))
		step = UNIT_DIR "/multi-user.target.wants/" UNIT_NAME;
	if (!r && symlink("../" UNIT_NAME, UNIT_DIR "/multi-user.target.wants/" UNIT_NAME))
		r = -errno;
	if (r)
		die("--exec under the system's init: %s: %s", step, strerror(-r));
}

/* The service: the command as in direct mode, then a clean shutdown
 * through systemd (kvmini exits with the command's status when the
 * guest powers off). */
int exec_service_main(void)
{
	struct init_conf conf;
	char err[512], *text;
	size_t len;
	int out;

	exec_mode = true;
	have_ports = !ioperm(CTL_PORT, 2, 1);
	exec_err_fd = open_raw_tty("/dev/ttyS2");
	out = open_raw_tty("/dev/ttyS1");
	text = slurp(RUN_CONF, INIT_CONF_MAX_SIZE, &len);
	if (!text || out < 0) {
		say("--exec service: cannot open %s: %s", text ? "/dev/ttyS1" : RUN_CONF, strerror(errno));
		ctl(CTL_STATUS, 125);
	} else {
		if (init_conf_parse(text, len, &conf, err, sizeof(err))) {
			say("--exec service: %s: %s", RUN_CONF, err);
			ctl(CTL_STATUS, 125);
		} else {
			run_and_report(&conf, out, RUN_EXEC);
		}
	}
	execl("/bin/systemctl", "systemctl", "--no-block", "poweroff", (char *)NULL);
	say("--exec service: cannot run systemctl poweroff: %s; powering off at once", strerror(errno));
	power_off();
}
