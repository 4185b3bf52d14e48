/* kvmini's own terminal: raw mode, the Ctrl-A escape, stdin -> UART. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "kvmini/log.h"
#include "kvmini/terminal.h"

#define CTRL_A 0x01

/* The terminal's saved mode is process-wide by nature: it must be
 * restorable from atexit and from a fatal-signal handler. */
static struct termios saved_mode;
static int saved_fd = -1;

void terminal_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved_mode);
		saved_fd = -1;
	}
}

static void fatal_signal(int sig)
{
	terminal_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

int terminal_raw(int fd, struct kv_err *e)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct termios raw;

	if (!isatty(fd))
		return 0;
	if (tcgetattr(fd, &saved_mode) < 0)
		return kv_err_set(e, -errno, "tcgetattr on the terminal: %s", strerror(errno));
	raw = saved_mode;
	cfmakeraw(&raw);
	/* Keep output post-processing off: the guest's tty already sends \r\n. */
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return kv_err_set(e, -errno, "cannot put the terminal in raw mode: %s", strerror(errno));
	saved_fd = fd;
	atexit(terminal_restore);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], fatal_signal);
	return 0;
}

size_t terminal_escape_filter(struct escape_state *st, const uint8_t *in, size_t n,
		     uint8_t *out, bool *quit)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = in[i];

		if (!st->after_ctrl_a) {
			if (c == CTRL_A)
				st->after_ctrl_a = true;
			else
				out[o++] = c;
			continue;
		}
		st->after_ctrl_a = false;
		if (c == 'x' || c == 'X') {
			*quit = true;
			return o;
		}
		if (c != CTRL_A)
			out[o++] = CTRL_A;
		out[o++] = c;
	}
	return o;
}

struct input {
	uint8_t buf[4096];
	size_t len;
	bool eof;
};

static void feed_guest(const struct terminal_cfg *cfg, struct input *in)
{
	size_t n;

	if (!in->len || !cfg->input.ready || !cfg->input.ready(cfg->input.ctx))
		return;
	n = cfg->input.receive(cfg->input.ctx, in->buf, in->len);
	memmove(in->buf, in->buf + n, in->len - n);
	in->len -= n;
}

/* Reads what stdin has, through the escape filter, into @in. */
static void read_input(const struct terminal_cfg *cfg, struct escape_state *st,
		       struct input *in)
{
	uint8_t raw[sizeof(in->buf) / 2];
	size_t room = sizeof(in->buf) - in->len;
	ssize_t n;
	bool quit = false;

	n = read(cfg->in_fd, raw, room / 2 < sizeof(raw) ? room / 2 : sizeof(raw));
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			LOG_WARN("reading the console input: %s; input closed", strerror(errno));
			in->eof = true;
		}
		return;
	}
	if (n == 0) {
		in->eof = true; /* the guest keeps running without input */
		return;
	}
	if (cfg->use_escape)
		in->len += terminal_escape_filter(st, raw, (size_t)n, in->buf + in->len, &quit);
	else {
		memcpy(in->buf + in->len, raw, (size_t)n);
		in->len += (size_t)n;
	}
	if (quit) {
		LOG_INFO("Ctrl-A x: stopping the VM");
		cfg->request_stop(cfg->ctx, STOP_USER, 0);
	}
}

void terminal_stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGWINCH);
}

static void report_size(const struct terminal_cfg *cfg)
{
	struct winsize ws;

	if (cfg->resize && cfg->in_fd >= 0 && !ioctl(cfg->in_fd, TIOCGWINSZ, &ws))
		cfg->resize(cfg->ctx, ws.ws_col, ws.ws_row);
}

int terminal_run(const struct terminal_cfg *cfg, struct kv_err *e)
{
	struct escape_state st = { false };
	struct input *in = calloc(1, sizeof(*in));
	sigset_t sigs;
	int sfd;

	if (!in)
		return kv_err_set(e, -ENOMEM, "out of memory");
	terminal_stop_signals(&sigs);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		free(in);
		return kv_err_set(e, -errno, "signalfd: %s", strerror(errno));
	}
	if (cfg->in_fd < 0)
		in->eof = true;
	report_size(cfg);

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = cfg->stop_fd, .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = cfg->in_fd, .events = POLLIN },
		};
		/* Read stdin only when there is room: backpressure keeps piped
		 * input from outrunning the guest's UART. */
		bool want_input = !in->eof && in->len < sizeof(in->buf) / 2;
		int timeout = in->len ? 5 : -1; /* poll the UART FIFO for room */

		if (poll(pfd, want_input ? 3 : 2, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
				/* nothing */
			} else if (si.ssi_signo == SIGWINCH) {
				report_size(cfg);
			} else {
				LOG_INFO("signal %u: stopping the VM", si.ssi_signo);
				cfg->request_stop(cfg->ctx, STOP_SIGNAL, (int)si.ssi_signo);
			}
		}
		if (want_input && pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
			read_input(cfg, &st, in);
		feed_guest(cfg, in);
	}
	close(sfd);
	free(in);
	return 0;
}
