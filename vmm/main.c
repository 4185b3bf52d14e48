/* kvmini: argv -> config -> run. The only place that prints errors and exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/config.h"
#include "kvmini/guest_mem.h"
#include "kvmini/kvm.h"
#include "kvmini/log.h"
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
	size_t len;

	if (config_build_cmdline(cfg, cmdline, sizeof(cmdline))) {
		kv_err_set(&e, -ENAMETOOLONG, "--cmdline: longer than %zu bytes", sizeof(cmdline) - 16);
		fail(&e);
	}
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
	if (gm_create(gm, cfg->memory, &e))
		fail(&e);
	if (boot_load(gm, &bcfg, entry, &e))
		fail(&e);
	LOG_DEBUG("%.3f s: kernel loaded; guest command line: %s", log_uptime(), cmdline);
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

static int run(const struct kv_config *cfg)
{
	struct vm_config vcfg = {
		.memory = cfg->memory, .cpus = cfg->cpus, .irqchip = true,
		.pc_devices = true, .console_out_fd = STDOUT_FILENO,
		.devices = &cfg->dev,
	};
	struct kv_err e = { 0 };
	struct boot_entry entry;
	struct guest_mem gm;
	struct vm *vm;
	sigset_t sigs;
	int status;

	load_guest(cfg, &gm, &entry);
	check_host();

	/* Termination signals go to the console loop's signalfd; block them
	 * before any thread starts so every thread inherits the mask. */
	terminal_stop_signals(&sigs);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	vcfg.premade_mem = &gm;
	if (vm_create(&vm, &vcfg, &e)) {
		gm_destroy(&gm);
		fail(&e);
	}
	LOG_DEBUG("%.3f s: VM created", log_uptime());
	if (vm_set_entry(vm, &entry, &e) || terminal_raw(STDIN_FILENO, &e) || vm_start(vm, &e)) {
		vm_destroy(vm);
		fail(&e);
	}
	if (terminal_run(vm, STDIN_FILENO, isatty(STDIN_FILENO), &e)) {
		vm_request_stop(vm, STOP_HOST_ERROR);
		LOG_ERR("%s", e.msg);
	}
	vm_wait(vm);
	status = vm_exit_status(vm);
	LOG_DEBUG("%.3f s: guest stopped (exit status %d)", log_uptime(), status);
	terminal_restore();
	vm_destroy(vm);
	LOG_DEBUG("%.3f s: VM destroyed", log_uptime());
	return status;
}

int main(int argc, char *argv[])
{
	struct kv_config cfg;
	struct kv_err e = { 0 };

	/* A console reader that goes away must not kill the VMM: the UART
	 * then sees EPIPE and drops output. */
	signal(SIGPIPE, SIG_IGN);
	log_init();
	/* KVMINI_LOG=debug shows boot milestones with timestamps. */
	if (getenv("KVMINI_LOG") && !strcmp(getenv("KVMINI_LOG"), "debug"))
		log_set_level(LOG_LEVEL_DEBUG);
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
	return run(&cfg);
}
