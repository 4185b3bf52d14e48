// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmmstat: run a VMM (or any command), time the first appearance of a marker
 * text in its standard output and its exit, and report its peak RSS.
 *
 *   vmmstat [--marker TEXT] [--out FILE] [--timeout SECS] -- CMD ARGS...
 *
 * CMD's stdout goes through a pipe and is copied to FILE (or to our stdout);
 * its stderr and stdin are passed through. When CMD has exited and its stdout
 * has reached end of file, one line goes to stderr:
 *
 *   vmmstat: marker_s=%.3f exit_s=%.3f status=%d maxrss_kb=%ld
 *
 * Times are seconds of CLOCK_MONOTONIC since just before CMD was started;
 * marker_s is -1 when the marker (default KVMINI-USERSPACE-UP) never came.
 * status is CMD's exit status, or 128+signal. maxrss_kb is ru_maxrss from
 * wait4, the kernel's peak RSS of CMD (the VmHWM of /proc/PID/status), not
 * counting CMD's children. With --timeout, CMD is killed (SIGKILL) after
 * SECS seconds and the line says timeout=1. vmmstat exits with CMD's status,
 * or 125 if it cannot run CMD.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VMMSTAT_FAIL 125

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vmmstat [--marker TEXT] [--out FILE] [--timeout SECS] -- CMD ARGS...\n");
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Look for the marker in the stream, across read boundaries: the last
 * (marker length - 1) bytes of the previous read are kept in carry.
 */
struct scanner {
	const char *marker;
	size_t mlen;
	char *window;  /* carry + current chunk */
	size_t carry;
	bool found;
};

static bool scan_chunk(struct scanner *s, const char *buf, size_t len)
{
	size_t total;

	if (s->found || s->mlen == 0)
		return false;
	memcpy(s->window + s->carry, buf, len);
	total = s->carry + len;
	if (memmem(s->window, total, s->marker, s->mlen)) {
		s->found = true;
		return true;
	}
	s->carry = total < s->mlen - 1 ? total : s->mlen - 1;
	memmove(s->window, s->window + total - s->carry, s->carry);
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "marker", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum { CHUNK = 65536 };
	const char *marker = "KVMINI-USERSPACE-UP";
	const char *out_path = NULL;
	double timeout_s = 0, t0, marker_s = -1, exit_s;
	struct scanner sc = { 0 };
	struct rusage ru = { 0 };
	char buf[CHUNK];
	int pipefd[2], out_fd = STDOUT_FILENO, wstatus = 0, status, c;
	bool timed_out = false, eof = false, write_failed = false;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "+m:o:t:h", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'm':
			marker = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 't':
			errno = 0;
			timeout_s = strtod(optarg, &end);
			if (errno || *end || end == optarg || timeout_s <= 0) {
				fprintf(stderr, "vmmstat: bad --timeout '%s'\n", optarg);
				return VMMSTAT_FAIL;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return VMMSTAT_FAIL;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return VMMSTAT_FAIL;
	}

	sc.marker = marker;
	sc.mlen = strlen(marker);
	sc.window = malloc(sc.mlen + CHUNK);
	if (!sc.window) {
		fprintf(stderr, "vmmstat: out of memory\n");
		return VMMSTAT_FAIL;
	}
	if (out_path) {
		out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			fprintf(stderr, "vmmstat: cannot open %s: %s\n", out_path, strerror(errno));
			return VMMSTAT_FAIL;
		}
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "vmmstat: pipe: %s\n", strerror(errno));
		return VMMSTAT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);

	t0 = now_s();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "vmmstat: fork: %s\n", strerror(errno));
		return VMMSTAT_FAIL;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(pipefd[1], STDOUT_FILENO) < 0)
			_exit(VMMSTAT_FAIL);
		execvp(argv[optind], &argv[optind]);
		fprintf(stderr, "vmmstat: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);

	while (!eof) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		int wait_ms = -1;
		ssize_t n;

		if (timeout_s > 0 && !timed_out) {
			double left = t0 + timeout_s - now_s();

			if (left <= 0) {
				kill(pid, SIGKILL);
				timed_out = true;
				continue;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		if (poll(&pfd, 1, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "vmmstat: poll: %s\n", strerror(errno));
			break;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(pipefd[0], buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "vmmstat: read: %s\n", strerror(errno));
			break;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		if (scan_chunk(&sc, buf, (size_t)n))
			marker_s = now_s() - t0;
		if (!write_failed && write_all(out_fd, buf, (size_t)n) < 0)
			write_failed = true;  /* keep draining so CMD is not blocked */
	}
	close(pipefd[0]);

	while (wait4(pid, &wstatus, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "vmmstat: wait4: %s\n", strerror(errno));
			return VMMSTAT_FAIL;
		}
	}
	exit_s = now_s() - t0;
	if (WIFEXITED(wstatus))
		status = WEXITSTATUS(wstatus);
	else if (WIFSIGNALED(wstatus))
		status = 128 + WTERMSIG(wstatus);
	else
		status = VMMSTAT_FAIL;
	if (out_fd != STDOUT_FILENO)
		close(out_fd);

	fprintf(stderr, "vmmstat: marker_s=%.3f exit_s=%.3f status=%d maxrss_kb=%ld%s\n",
		marker_s, exit_s, status, ru.ru_maxrss, timed_out ? " timeout=1" : "");
	free(sc.window);
	return status;
}
