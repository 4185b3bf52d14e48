// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmmstat: run a VMM (or any command), time the first appearance of a marker
 * text in its standard output and its exit, and report its peak RSS.
 *
 *   vmmstat [--marker TEXT] [--out FILE] [--timeout SECS]
 *           [--sample MS [--guest-mem MIB]] -- CMD ARGS...
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
 *
 * With --sample MS, every MS milliseconds while CMD runs vmmstat also reads
 * (the line then ends with these fields, -1 when never seen):
 *   - KVM's counters for CMD's VM from debugfs, /sys/kernel/debug/kvm/PID-FD/
 *     (mounted by the caller): kvm_exits, kvm_io_exits, kvm_pf_taken (the
 *     last values read, so the last MS of the run are missing) and
 *     kvm_pages_2m (the most 2 MiB mappings seen at once);
 *   - /proc/PID/smaps: overhead_kb, the most RSS seen outside guest RAM
 *     (mappings of at least --guest-mem MiB, default 512, count as guest
 *     RAM: the VMM's one big anonymous mapping), and guest_kb, the most RSS
 *     seen in guest RAM.
 */
#include <dirent.h>
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
	fprintf(f, "usage: vmmstat [--marker TEXT] [--out FILE] [--timeout SECS] "
		"[--sample MS [--guest-mem MIB]] -- CMD ARGS...\n");
}

/* What --sample gathers about the VMM process. */
struct sample {
	long long exits, io_exits, pf_taken, pages_2m_max;
	long long overhead_kb, guest_kb;  /* the most seen of each */
	char kvm_dir[300];                /* debugfs dir of the VM, once found */
};

/* A number from a debugfs file; -1 when it cannot be read. */
static long long read_count(const char *dir, const char *name)
{
	char path[400], buf[64];
	long long v = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = strtoll(buf, NULL, 10);
	}
	return v;
}

static void sample_kvm(struct sample *s, pid_t pid)
{
	long long v;

	if (!s->kvm_dir[0]) {
		char prefix[32];
		struct dirent *de;
		DIR *d = opendir("/sys/kernel/debug/kvm");

		if (!d)
			return;
		snprintf(prefix, sizeof(prefix), "%d-", (int)pid);
		while ((de = readdir(d)) != NULL)
			if (!strncmp(de->d_name, prefix, strlen(prefix)))
				snprintf(s->kvm_dir, sizeof(s->kvm_dir), "/sys/kernel/debug/kvm/%s",
					 de->d_name);
		closedir(d);
		if (!s->kvm_dir[0])
			return;
	}
	/* The folder goes away with the VM: keep the last values read. */
	if ((v = read_count(s->kvm_dir, "exits")) >= 0)
		s->exits = v;
	if ((v = read_count(s->kvm_dir, "io_exits")) >= 0)
		s->io_exits = v;
	if ((v = read_count(s->kvm_dir, "pf_taken")) >= 0)
		s->pf_taken = v;
	if ((v = read_count(s->kvm_dir, "pages_2m")) > s->pages_2m_max)
		s->pages_2m_max = v;
}

/* RSS in and outside guest RAM, from /proc/PID/smaps. */
static void sample_smaps(struct sample *s, pid_t pid, unsigned long long guest_min)
{
	char path[64], line[512];
	unsigned long long start, end, size = 0;
	long long rss, total = 0, guest = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t tok = strcspn(line, " ");

		/* A mapping's first line starts "START-END perms ..."; its fields
		 * start "Name:". */
		if (tok && line[tok - 1] != ':' && sscanf(line, "%llx-%llx", &start, &end) == 2)
			size = end - start;
		else if (sscanf(line, "Rss: %lld kB", &rss) == 1) {
			total += rss;
			if (size >= guest_min)
				guest += rss;
		}
	}
	fclose(f);
	if (total > 0 && total - guest > s->overhead_kb)
		s->overhead_kb = total - guest;
	if (total > 0 && guest > s->guest_kb)
		s->guest_kb = guest;
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
		{ "sample", required_argument, NULL, 's' },
		{ "guest-mem", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum { CHUNK = 65536 };
	const char *marker = "KVMINI-USERSPACE-UP";
	const char *out_path = NULL;
	double timeout_s = 0, t0, marker_s = -1, exit_s, next_sample = 0;
	long sample_ms = 0;
	unsigned long long guest_min = 512ULL << 20;
	struct sample smp = { -1, -1, -1, -1, -1, -1, "" };
	struct scanner sc = { 0 };
	struct rusage ru = { 0 };
	char buf[CHUNK];
	int pipefd[2], out_fd = STDOUT_FILENO, wstatus = 0, status, c;
	bool timed_out = false, eof = false, write_failed = false;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "+m:o:t:s:g:h", opts, NULL)) != -1) {
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
		case 's':
		case 'g': {
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v <= 0) {
				fprintf(stderr, "vmmstat: bad --%s '%s'\n", c == 's' ? "sample" : "guest-mem",
					optarg);
				return VMMSTAT_FAIL;
			}
			if (c == 's')
				sample_ms = v;
			else
				guest_min = (unsigned long long)v << 20;
			break;
		}
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
		if (sample_ms) {
			double now = now_s();

			if (now >= next_sample) {
				sample_kvm(&smp, pid);
				sample_smaps(&smp, pid, guest_min);
				next_sample = now + (double)sample_ms / 1000.0;
			}
			if (wait_ms < 0 || wait_ms > (int)((next_sample - now) * 1000) + 1)
				wait_ms = (int)((next_sample - now) * 1000) + 1;
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

	fprintf(stderr, "vmmstat: marker_s=%.3f exit_s=%.3f status=%d maxrss_kb=%ld%s",
		marker_s, exit_s, status, ru.ru_maxrss, timed_out ? " timeout=1" : "");
	if (sample_ms)
		fprintf(stderr, " kvm_exits=%lld kvm_io_exits=%lld kvm_pf_taken=%lld kvm_pages_2m=%lld "
			"overhead_kb=%lld guest_kb=%lld", smp.exits, smp.io_exits, smp.pf_taken,
			smp.pages_2m_max, smp.overhead_kb, smp.guest_kb);
	fputc('\n', stderr);
	free(sc.window);
	return status;
}
