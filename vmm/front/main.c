/* kvmini: argv -> config -> run. The only place that prints errors and exits. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/config.h"
#include "kvmini/cpio.h"
#include "kvmini/control_port.h"
#include "kvmini/guest_mem.h"
#include "kvmini/initramfs.h"
#include "kvmini/kvm.h"
#include "kvmini/log.h"
#include "kvmini/report.h"
#include "kvmini/seccomp.h"
#include "kvmini/terminal.h"
#include "kvmini/vm.h"

static void fail(const struct kv_err *e)
{
	terminal_restore();
	fprintf(stderr, "kvmini: error: %s\n", e->msg[0] ? e->msg : strerror(-e->code));
	exit(KVMINI_EXIT_FAILURE);
}

/* $XDG_CACHE_HOME/kvmini, else ~/.cache/kvmini; NULL when neither is set. */
static const char *cache_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg && *xdg)
		n = snprintf(buf, len, "%s/kvmini", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.cache/kvmini", home);
	else
		return NULL;
	return n > 0 && (size_t)n < len ? buf : NULL;
}

/* --exec: the command travels as /kvmini/exec in a small cpio archive
 * appended to the initrd, byte for byte (quotes, newlines, UTF-8). The
 * guest's /init runs it with sh. Returns a malloc'd archive. */
static void *exec_archive(const char *cmd, size_t *len)
{
	struct cpio_writer w;
	struct kv_err e = { 0 };
	size_t n = strlen(cmd);
	size_t cap = cpio_entry_size("kvmini", 0) + cpio_entry_size("kvmini/exec", n) +
		     cpio_trailer_size();
	void *buf = malloc(cap);

	if (!buf) {
		kv_err_set(&e, -ENOMEM, "--exec: out of memory for the command archive");
		fail(&e);
	}
	cpio_init(&w, buf, cap);
	if (cpio_add_dir(&w, "kvmini", 0755) || cpio_add_file(&w, "kvmini/exec", 0644, cmd, n) ||
	    cpio_finish(&w)) {
		kv_err_set(&e, w.err, "--exec: cannot build the command archive: %s", strerror(-w.err));
		fail(&e);
	}
	*len = w.len;
	return buf;
}

/* This directory as the guest sees it: itself on a disk root (the init
 * falls back when the root lacks it); under --rootfs DIR, its path below
 * DIR, or NULL when it lies outside DIR. */
static const char *guest_cwd(const struct kv_config *cfg, char *buf, size_t len)
{
	char root[4096];
	size_t n;

	if (!getcwd(buf, len))
		return NULL;
	if (!cfg->init.rootfs[0])
		return buf;
	if (!realpath(cfg->init.rootfs, root))
		return NULL;
	n = strlen(root);
	if (!strcmp(root, "/"))
		return buf;
	if (strncmp(buf, root, n) || (buf[n] != '/' && buf[n] != '\0'))
		return NULL;
	memmove(buf, buf + n, strlen(buf + n) + 1);
	if (!buf[0])
		strcpy(buf, "/");
	return buf;
}

/* No --initrd and root= named: kvmini's own initramfs, with its init and
 * the modules the machine needs (guest-boot/initramfs.c). The command
 * runs in --workdir, else in this directory when the guest's root has
 * it, else in /root. Returns a malloc'd archive. */
static void *own_initramfs(const struct kv_config *cfg, const char *cmdline, size_t *len)
{
	const struct config_devices *d = &cfg->dev;
	unsigned nr_virtio = d->nr_disks + d->nr_nets + d->nr_shares + (d->console == CONSOLE_VIRTIO);
	const char *term = getenv("TERM");
	static char cwd[4096];
	struct kv_err e = { 0 };
	struct initramfs_cfg ic = {
		.kernel_path = cfg->kernel, .modules_dir = cfg->init.modules_dir,
		.cmdline = cmdline, .exec = cfg->exec,
		.cwd = cfg->init.workdir ? cfg->init.workdir : guest_cwd(cfg, cwd, sizeof(cwd)),
		.cwd_strict = cfg->init.workdir != NULL, .exec_boot = cfg->init.exec_boot,
		.term = term && *term && !strchr(term, '\n') ? term : NULL,
		.overlays = cfg->init.overlays, .nr_overlays = cfg->init.nr_overlays,
		.virtio_pci = nr_virtio > config_nr_mmio(d), .virtio_mmio = config_nr_mmio(d) > 0,
		.disks = d->nr_disks > 0, .nets = d->nr_nets > 0, .console = d->console == CONSOLE_VIRTIO,
		.shares = d->nr_shares > 0,
	};
	void *buf;

	if (ic.cwd && strchr(ic.cwd, '\n'))
		ic.cwd = NULL;
	if (initramfs_build(&ic, &buf, len, &e))
		fail(&e);
	return buf;
}

/* Guest RAM is mapped with no reservation, so a --memory larger than the
 * host could ever back would only fail later, when the guest touches it
 * (the OOM killer, or SIGBUS). Refuse it at once. */
static void check_memory_fits(uint64_t memory)
{
	struct kv_err e = { 0 };
	struct sysinfo si;
	uint64_t ram, swap;

	if (sysinfo(&si) < 0)
		return;
	ram = (uint64_t)si.totalram * si.mem_unit;
	swap = (uint64_t)si.totalswap * si.mem_unit;
	if (memory <= ram + swap)
		return;
	kv_err_set(&e, -ENOMEM,
		   "--memory %llu MiB: more than this host's RAM and swap together (%llu MiB + %llu MiB)",
		   (unsigned long long)(memory >> 20), (unsigned long long)(ram >> 20),
		   (unsigned long long)(swap >> 20));
	fail(&e);
}

/* Loads kernel and initrd into fresh guest memory before touching KVM, so
 * that a bad file is reported as such on any host. */
static void load_guest(const struct kv_config *cfg, struct guest_mem *gm, struct boot_entry *entry)
{
	static char cmdline[65536];
	char cache[4096];
	struct kv_err e = { 0 };
	struct boot_cfg bcfg = {
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = cmdline,
		.mode = cfg->boot,
		.ncpus = cfg->cpus,
		.cache_dir = cache_dir(cache, sizeof(cache)),
		.nr_virtio_mmio = config_nr_mmio(&cfg->dev),
	};
	const struct gm_opts mopts = { .hugetlb = cfg->mem_hugetlb, .prefault = cfg->mem_prefault };
	size_t len;

	if (config_build_cmdline(cfg, cmdline, sizeof(cmdline))) {
		kv_err_set(&e, -ENAMETOOLONG, "--cmdline: longer than %zu bytes", sizeof(cmdline) - 16);
		fail(&e);
	}
	if (config_init_own(cfg->initrd, cfg->cmdline))
		bcfg.initrd_extra = own_initramfs(cfg, cmdline, &bcfg.initrd_extra_len);
	else if (cfg->exec)
		bcfg.initrd_extra = exec_archive(cfg->exec, &bcfg.initrd_extra_len);
	/* virtio-mmio devices: the DSDT describes them (LNRO0005); kernels
	 * built with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES also find them here. */
	len = strlen(cmdline);
	if (bcfg.nr_virtio_mmio && len + 1 < sizeof(cmdline)) {
		cmdline[len++] = ' ';
		if (boot_virtio_mmio_cmdline(bcfg.nr_virtio_mmio, cmdline + len, sizeof(cmdline) - len) < 0) {
			kv_err_set(&e, -ENAMETOOLONG, "--cmdline: no room left for the virtio_mmio.device= entries");
			fail(&e);
		}
	}
	check_memory_fits(cfg->memory);
	if (gm_create(gm, cfg->memory, &mopts, &e))
		fail(&e);
	LOG_DEBUG("%.3f s: guest memory mapped", log_uptime());
	if (boot_load(gm, &bcfg, entry, &e))
		fail(&e);
	free((void *)bcfg.initrd_extra);
	LOG_DEBUG("%.3f s: kernel loaded; guest command line: %s", log_uptime(), cmdline);
}

/* A share holds an O_PATH fd for every inode the guest has looked up
 * (up to the server's limit): let kvmini use the hard limit of open
 * files, not the usual soft 1024. */
static void raise_nofile(const struct config_devices *d)
{
	struct rlimit rl;

	if (!d->nr_shares || getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		LOG_WARN("--share: cannot raise the open-file limit to %llu: %s",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

static void check_host(void)
{
	char why[256];
	struct kv_err e = { 0 };

	if (!kvm_host_lacks_hw_virt(why, sizeof(why)))
		return;
	if (getenv("KVMINI_ALLOW_NO_HW_VIRT")) {
		LOG_WARN("%s: the guest runs emulated and will be very slow", why);
		return;
	}
	kv_err_set(&e, -ENOTSUP,
		   "no hardware virtualization: %s, so a Linux guest would run emulated at a few million "
		   "instructions per second and never finish booting. Run kvmini on a host with VT-x/AMD-V "
		   "(or in a VM with nested virtualization, e.g. tools/nested-run), or set "
		   "KVMINI_ALLOW_NO_HW_VIRT=1 to try anyway", why);
	fail(&e);
}

/* --timeout: a thread that sleeps until the deadline (counted from
 * process start) unless told the VM already stopped. */
struct timeout {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopped;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	struct vm *vm;
};

static void *timeout_main(void *arg)
{
	struct timeout *t = arg;
	bool fired = false;
	struct kv_err e = { 0 };

	/* Started before the main thread's filter went on: take it here. */
	if (seccomp_thread_start(SECCOMP_MAIN, &e)) {
		LOG_ERR("--timeout: %s", e.msg);
		vm_request_stop(t->vm, STOP_HOST_ERROR);
		return NULL;
	}

	pthread_mutex_lock(&t->lock);
	while (!t->stopped && !fired)
		fired = pthread_cond_timedwait(&t->cond, &t->lock, &t->deadline) == ETIMEDOUT;
	pthread_mutex_unlock(&t->lock);
	if (fired && !t->stopped) {
		LOG_INFO("--timeout: stopping the VM");
		vm_request_stop(t->vm, STOP_TIMEOUT);
	}
	return NULL;
}

static int timeout_start(struct timeout *t, struct vm *vm, uint64_t ms, struct kv_err *e)
{
	pthread_condattr_t attr;
	double left = (double)ms / 1000.0 - log_uptime();
	int r;

	memset(t, 0, sizeof(*t));
	t->vm = vm;
	clock_gettime(CLOCK_MONOTONIC, &t->deadline);
	if (left > 0) {
		uint64_t ns = (uint64_t)(left * 1e9);

		t->deadline.tv_sec += (time_t)(ns / 1000000000u);
		t->deadline.tv_nsec += (long)(ns % 1000000000u);
		if (t->deadline.tv_nsec >= 1000000000L) {
			t->deadline.tv_sec++;
			t->deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &attr);
	pthread_condattr_destroy(&attr);
	r = pthread_create(&t->thread, NULL, timeout_main, t);
	if (r)
		return kv_err_set(e, -r, "--timeout: cannot start its thread: %s", strerror(r));
	return 0;
}

static void timeout_stop(struct timeout *t)
{
	pthread_mutex_lock(&t->lock);
	t->stopped = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
}

/* Resident KiB from /proc/self/statm, opened before the filters as
 * @statm_fd and read again with lseek and read; -1 when unknown. */
static long rss_now_kib(int statm_fd)
{
	char buf[128];
	unsigned long size, resident;
	ssize_t n;

	if (statm_fd < 0 || lseek(statm_fd, 0, SEEK_SET) < 0)
		return -1;
	n = read(statm_fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
		return -1;
	return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

/* The boot profile: KVM's statistics, and kvmini's memory apart from
 * guest RAM (resident guest pages counted with mincore). */
static void report_profile(struct report *rep, struct vm *vm, int statm_fd)
{
	uint64_t guest = gm_resident_bytes(&vm->mem);

	if (vm_stats_collect(vm, rep))
		LOG_DEBUG("--report: no KVM statistics");
	rep->rss_kib = rss_now_kib(statm_fd);
	/* hugetlbfs pages are not in the RSS: none of the RSS is guest RAM. */
	rep->guest_resident_kib = vm->mem.hugetlb ? 0 : (long)(guest >> 10);
	rep->guest_hugetlb_kib = vm->mem.hugetlb ? (long)(guest >> 10) : 0;
}

/* Writes the report to @f (stderr, or the --report file opened before
 * the system call filters went on) and closes a file. */
static void report_finish(const struct kv_config *cfg, struct report *rep, struct vm *vm,
			  int status, FILE *f, int statm_fd)
{
	struct rusage ru;

	if (cfg->report_json)
		report_profile(rep, vm, statm_fd);
	rep->exit_status = status;
	rep->stop_reason = vm_stop_name(vm->stop_cause);
	rep->has_command_status = vm->control && control_port_status(vm->control, &rep->command_status);
	if (!getrusage(RUSAGE_SELF, &ru))
		rep->peak_rss_kib = ru.ru_maxrss;
	if (!cfg->report_json)
		return;
	if (report_write_json(rep, f))
		LOG_ERR("--report: writing the report failed");
	if (f != stderr)
		fclose(f);
}

/* The terminal's way to end the VM: Ctrl-A x or a termination signal. */
static void terminal_stop(void *ctx, enum vm_stop_cause cause, int signo)
{
	if (cause == STOP_SIGNAL)
		vm_request_stop_by_signal(ctx, signo);
	else
		vm_request_stop(ctx, cause);
}

static void terminal_resize(void *ctx, unsigned cols, unsigned rows)
{
	vm_console_resize(ctx, cols, rows);
}

static int run(const struct kv_config *cfg, double before_main)
{
	/* Under --exec stdout carries only the command's output: the kernel
	 * console goes to stderr, or nowhere with --quiet. */
	struct vm_config vcfg = {
		.memory = cfg->memory, .cpus = cfg->cpus, .irqchip = true, .pc_devices = true,
		.cpu_model = cfg->cpu_host ? CPU_MODEL_HOST : CPU_MODEL_DEFAULT,
		.console_out_fd = !cfg->exec ? STDOUT_FILENO : cfg->quiet ? -1 : STDERR_FILENO,
		.exec = cfg->exec != NULL, .exec_out_fd = STDOUT_FILENO, .exec_err_fd = STDERR_FILENO,
		.devices = &cfg->dev, .kvm_stats = cfg->report_json,
		.mem_opts = { .hugetlb = cfg->mem_hugetlb, .prefault = cfg->mem_prefault },
	};
	struct timeout timeout;
	struct report rep;
	FILE *report_file = stderr;
	/* --exec reads no input: a CI job's stdin may be anything. */
	int in_fd = cfg->exec ? -1 : STDIN_FILENO;
	int statm_fd = -1;
	struct kv_err e = { 0 };
	struct boot_entry entry;
	struct guest_mem gm;
	struct terminal_cfg tcfg;
	struct vm *vm;
	sigset_t sigs;
	int status;

	report_init(&rep);
	rep.before_main_s = before_main;
	vcfg.report = &rep;
	/* Opened now: a path that cannot be written fails before the VM
	 * runs, and no file is opened once the filters are on. */
	if (cfg->report_path) {
		report_file = fopen(cfg->report_path, "w");
		if (!report_file) {
			kv_err_set(&e, -errno, "--report: cannot write %s: %s", cfg->report_path, strerror(errno));
			fail(&e);
		}
	}
	if (cfg->report_json)
		statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	load_guest(cfg, &gm, &entry);
	check_host();
	raise_nofile(&cfg->dev);
	LOG_DEBUG("%.3f s: host checked", log_uptime());
	/* Builds the filters; each thread installs its own as it starts. */
	if (cfg->seccomp && seccomp_enable(&e)) {
		gm_destroy(&gm);
		fail(&e);
	}

	/* Termination signals go to the console loop's signalfd; block them
	 * before any thread starts so every thread inherits the mask. */
	terminal_stop_signals(&sigs);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	LOG_DEBUG("%.3f s: system call filters built", log_uptime());
	seccomp_set_fatal_hook(terminal_restore);
	vcfg.premade_mem = &gm;
	if (vm_create(&vm, &vcfg, &e)) {
		gm_destroy(&gm);
		fail(&e);
	}
	LOG_DEBUG("%.3f s: VM created", log_uptime());
	tcfg = (struct terminal_cfg){
		.in_fd = in_fd, .use_escape = in_fd >= 0 && isatty(in_fd),
		.stop_fd = vm_stop_fd(vm), .input = vm_console_input(vm),
		.request_stop = terminal_stop, .resize = terminal_resize, .ctx = vm,
	};
	if (vm_set_entry(vm, &entry, &e) || (in_fd >= 0 && terminal_raw(in_fd, &e)) ||
	    vm_start(vm, &e)) {
		vm_destroy(vm);
		fail(&e);
	}
	if (cfg->timeout_ms && timeout_start(&timeout, vm, cfg->timeout_ms, &e)) {
		vm_request_stop(vm, STOP_HOST_ERROR);
		vm_wait(vm);
		vm_destroy(vm);
		fail(&e);
	}
	/* Last: the threads vm_start and timeout_start created must not
	 * inherit this filter (the timeout thread installs its own). */
	if (seccomp_thread_start(SECCOMP_MAIN, &e)) {
		vm_request_stop(vm, STOP_HOST_ERROR);
		LOG_ERR("%s", e.msg);
	} else if (terminal_run(&tcfg, &e)) {
		vm_request_stop(vm, STOP_HOST_ERROR);
		LOG_ERR("%s", e.msg);
	}
	vm_wait(vm);
	report_mark(&rep, MS_VM_EXIT);
	if (cfg->timeout_ms)
		timeout_stop(&timeout);
	status = vm_exit_status(vm);
	LOG_DEBUG("%.3f s: guest stopped (exit status %d)", log_uptime(), status);
	report_finish(cfg, &rep, vm, status, report_file, statm_fd);
	if (statm_fd >= 0)
		close(statm_fd);
	terminal_restore();
	vm_destroy(vm);
	LOG_DEBUG("%.3f s: VM destroyed", log_uptime());
	report_fini(&rep);
	return status;
}

int main(int argc, char *argv[])
{
	struct kv_config cfg;
	struct kv_err e = { 0 };
	const char *kvmini_log = getenv("KVMINI_LOG");
	double before_main;

	/* A console reader that goes away must not kill the VMM: the UART
	 * then sees EPIPE and drops output. */
	signal(SIGPIPE, SIG_IGN);
	log_init();
	before_main = report_process_age();
	/* KVMINI_LOG=debug shows boot milestones with timestamps; trace also
	 * each virtio-fs request. */
	if (kvmini_log && !strcmp(kvmini_log, "debug"))
		log_set_level(LOG_LEVEL_DEBUG);
	else if (kvmini_log && !strcmp(kvmini_log, "trace"))
		log_set_level(LOG_LEVEL_TRACE);
	if (config_parse(argc, argv, &cfg, &e))
		fail(&e);
	switch (cfg.action) {
	case ACTION_HELP:
		config_print_usage(stdout);
		return 0;
	case ACTION_VERSION:
		printf("kvmini %s\n", KVMINI_VERSION);
		return 0;
	case ACTION_RUN:
		break;
	}
	if (cfg.quiet)
		log_set_level(LOG_LEVEL_ERR);
	LOG_DEBUG("%.3f s: kvmini started", log_uptime());
	return run(&cfg, before_main);
}
