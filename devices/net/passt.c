/* --net user: passt as the guest's network. kvmini starts it on one end
 * of a socketpair (passt --fd: no socket file anywhere) and speaks QEMU's
 * stream protocol on the other (stream.c).
 *
 * Its life is tied to kvmini's by the socket: passt exits once the socket
 * closes, and the kernel closes kvmini's end on every exit, kill -9
 * included (our end is close-on-exec, so no other child holds it open).
 * Its stderr goes to a memfd, read back only when the link ends, to say
 * why in kvmini's log. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmini/log.h"
#include "kvmini/net_passt.h"

/* What passt assigns the guest (DHCP option 26, NDP) and we offer as
 * VIRTIO_NET_F_MTU: its largest, so bulk TCP needs few frames. */
#define PASST_MTU 65520
#define PASST_MTU_STR "65520"
#define PASST_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct passt_proc {
	pid_t pid;
	int err_fd;     /* passt's stderr (a memfd) */
};

/* Appends @s to @buf as the next argument. */
static int argv_push(char **argv, size_t max_argv, size_t *argc, char *buf, size_t buflen,
		     size_t *used, const char *s)
{
	size_t n = strlen(s) + 1;

	if (*argc + 2 > max_argv || *used + n > buflen)
		return -ENOSPC;
	memcpy(buf + *used, s, n);
	argv[(*argc)++] = buf + *used;
	argv[*argc] = NULL;
	*used += n;
	return 0;
}

int net_passt_argv(const struct net_user_cfg *cfg, const char *binary, int fd,
		   char **argv, size_t max_argv, char *buf, size_t buflen)
{
	char num[16], spec[80];
	size_t argc = 0, used = 0;
	int r;

	if (max_argv < 1)
		return -ENOSPC;
	argv[0] = NULL;
	snprintf(num, sizeof(num), "%d", fd);
	/* In the foreground (kvmini reaps it), quiet (errors only), on our
	 * socket. */
	const char *fixed[] = { binary, "--foreground", "--quiet", "--fd", num,
				"--mtu", PASST_MTU_STR };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if ((r = argv_push(argv, max_argv, &argc, buf, buflen, &used, fixed[i])) < 0)
			return r;
	for (unsigned i = 0; i < cfg->nr_fwd; i++) {
		const struct net_forward *f = &cfg->fwd[i];

		/* passt's form: [ADDRESS/]HOSTPORT:GUESTPORT */
		snprintf(spec, sizeof(spec), "%s%s%u:%u", f->host_addr, f->host_addr[0] ? "/" : "",
			 f->host_port, f->guest_port);
		if ((r = argv_push(argv, max_argv, &argc, buf, buflen, &used, f->udp ? "-u" : "-t")) < 0 ||
		    (r = argv_push(argv, max_argv, &argc, buf, buflen, &used, spec)) < 0)
			return r;
	}
	return 0;
}

/* The binary to run: --net user,passt=PATH, else $KVMINI_PASST, else
 * passt in $PATH. */
static int passt_find(const struct net_user_cfg *cfg, char *out, size_t len, struct kv_err *e)
{
	const char *want = cfg->passt ? cfg->passt : getenv("KVMINI_PASST");
	const char *path = getenv("PATH");
	char dirs[4096];
	char *dir, *save = NULL;

	if (want && *want) {
		if (access(want, X_OK) < 0)
			return kv_err_set(e, -errno, "passt binary '%s' (from %s): %s",
					  want, cfg->passt ? "passt=" : "$KVMINI_PASST", strerror(errno));
		snprintf(out, len, "%s", want);
		return 0;
	}
	snprintf(dirs, sizeof(dirs), "%s", path && *path ? path : PASST_DEFAULT_PATH);
	for (dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/passt", dir);
		if (access(out, X_OK) == 0)
			return 0;
	}
	return kv_err_set(e, -ENOENT, "passt is not installed (no 'passt' "
			  "in $PATH): install Debian's package passt (apt-get install passt), or "
			  "name the binary with --net user,passt=PATH or $KVMINI_PASST");
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void passt_child(int sock, int err_fd, char **argv)
{
	int null = open("/dev/null", O_RDWR);
	int flags = fcntl(sock, F_GETFD);

	if (null < 0 || flags < 0 || fcntl(sock, F_SETFD, flags & ~FD_CLOEXEC) < 0 ||
	    dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	/* Also goes when kvmini's creating thread does (the socket closing
	 * is what ends it normally). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	execv(argv[0], argv);
	_exit(127);
}

/* passt's stderr, minus the noise every run prints (no syslog here; the
 * switch to user nobody when run as root): its last line, in @buf. */
static void passt_describe_end(void *ctx, char *buf, size_t len)
{
	struct passt_proc *p = ctx;
	char text[4096], *line, *save = NULL;
	const char *last = NULL;
	ssize_t n = pread(p->err_fd, text, sizeof(text) - 1, 0);

	text[n > 0 ? n : 0] = 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strstr(line, "syslog") && !strstr(line, "Don't run as root") && *line)
			last = line;
	if (last)
		snprintf(buf, len, "passt closed the link: it said '%s'", last);
	else
		snprintf(buf, len, "passt closed the link without a message (it exited or was "
			 "killed)");
}

/* After our end is closed: passt sees the socket close and exits. Wait
 * for that a little (poll() as the sleep: the main thread's filter has
 * it), then leave a slow passt to exit by itself. */
static void passt_release(void *ctx)
{
	struct passt_proc *p = ctx;

	for (int i = 0; i < 100; i++) {
		pid_t r = waitpid(p->pid, NULL, WNOHANG);

		if (r == p->pid || (r < 0 && errno != EINTR))
			break;
		if (i == 99)
			LOG_WARN("passt (pid %d) is still running 1 s after its socket closed",
				 (int)p->pid);
		else
			poll(NULL, 0, 10);
	}
	close(p->err_fd);
	free(p);
}

int net_passt_backend_start(const struct net_user_cfg *cfg, struct net_backend **out,
			    struct kv_err *e)
{
	char binary[4096], buf[4096], *argv[2 * NET_MAX_FORWARDS + 16];
	struct net_stream_peer peer = { passt_describe_end, passt_release, NULL };
	struct passt_proc *p;
	int sv[2], r;

	r = passt_find(cfg, binary, sizeof(binary), e);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return kv_err_set(e, -ENOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = kv_err_set(e, -errno, "socketpair: %s", strerror(errno));
		free(p);
		return r;
	}
	p->err_fd = memfd_create("kvmini-passt-stderr", MFD_CLOEXEC);
	r = p->err_fd < 0 ? -errno : net_passt_argv(cfg, binary, sv[1], argv,
						   sizeof(argv) / sizeof(argv[0]), buf, sizeof(buf));
	if (r < 0) {
		kv_err_set(e, r, "preparing passt: %s", strerror(-r));
		goto fail;
	}
	p->pid = fork();
	if (p->pid < 0) {
		r = kv_err_set(e, -errno, "starting %s: %s", binary, strerror(errno));
		goto fail;
	}
	if (p->pid == 0)
		passt_child(sv[1], p->err_fd, argv);
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		r = kv_err_set(e, -errno, "O_NONBLOCK: %s", strerror(errno));
		close(sv[0]);
		passt_release(p);       /* passt sees the close and exits */
		return r;
	}
	peer.ctx = p;
	LOG_DEBUG("--net user: started %s (pid %d)", binary, (int)p->pid);
	return net_stream_backend_new(sv[0], PASST_MTU, "passt", &peer, out, e);
fail:
	close(sv[0]);
	close(sv[1]);
	if (p->err_fd >= 0)
		close(p->err_fd);
	free(p);
	return r;
}
