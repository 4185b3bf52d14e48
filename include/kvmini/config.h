/* Command-line parsing and validation: pure functions, unit-tested. */
#ifndef KVMINI_CONFIG_H
#define KVMINI_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/boot.h"
#include "kvmini/config_devices.h"
#include "kvmini/config_init.h"
#include "kvmini/err.h"

/* Exit statuses of the kvmini process (documented in --help and README). */
#define KVMINI_EXIT_OK          0   /* guest powered off or rebooted */
#define KVMINI_EXIT_GUEST_PANIC 121 /* the guest kernel panicked (pvpanic) */
#define KVMINI_EXIT_GUEST_CRASH 122 /* triple fault, entry failure, KVM internal error */
#define KVMINI_EXIT_NO_STATUS   123 /* --exec: the guest powered off or reset without a status */
#define KVMINI_EXIT_TIMEOUT     124 /* --timeout fired */
#define KVMINI_EXIT_FAILURE     125 /* kvmini itself failed: usage, files, host */

#define CONFIG_DEFAULT_MEMORY (512ULL << 20)
#define CONFIG_MAX_CPUS 254 /* APIC IDs 0..253 and the I/O APIC (id = cpus) stay below the xAPIC broadcast id 255 */

enum config_action { ACTION_RUN, ACTION_HELP, ACTION_VERSION };

struct kv_config {
	enum config_action action;
	const char *kernel;
	const char *initrd;
	const char *cmdline;   /* as the user gave it, NULL if not */
	uint64_t memory;       /* bytes */
	bool mem_hugetlb;      /* --memory SIZE,hugetlb: 2 MiB hugetlbfs pages */
	bool mem_prefault;     /* --memory SIZE,prefault: allocate all guest RAM at start */
	unsigned cpus;
	bool cpu_host;           /* --cpu host: the host CPU's features unmasked */
	enum boot_mode boot;
	bool quiet;
	/* Disposable VMs (--exec, --timeout, --report). */
	const char *exec;       /* command for the guest's init; NULL: console session */
	uint64_t timeout_ms;    /* 0: no timeout */
	bool report_json;       /* --report json[:PATH] */
	const char *report_path; /* NULL: the report goes to stderr */
	bool seccomp;          /* --seccomp=on|off: per-thread system call filters (default on) */
	bool cmdline_defaults; /* --cmdline-defaults=on|off: config_cmdline_defaults (default on) */
	struct config_devices dev; /* --disk, --net, --console */
	struct config_init init;   /* --modules, --workdir, --overlay, --rootfs */
};

/* Parses "kvmini run ..." (argv[0] is the program). Returns 0 or -EINVAL
 * with a message saying which argument is wrong and why. */
int config_parse(int argc, char *const argv[], struct kv_config *cfg,
		 struct kv_err *e) KV_MUST_CHECK;

/* --memory's value: "SIZE[,hugetlb][,prefault]". Returns 0 or -EINVAL
 * with a message naming the part that is wrong. */
int config_parse_memory(const char *arg, struct kv_config *cfg, struct kv_err *e) KV_MUST_CHECK;

/* "512M", "2G", "1048576", "64K", "1T" -> bytes; rejects 0, junk and overflow. */
int config_parse_size(const char *s, uint64_t *out) KV_MUST_CHECK;

/* "500ms", "5s", "2m", "1h", or plain seconds "30" -> milliseconds;
 * rejects 0, junk, fractions and overflow. */
int config_parse_duration(const char *s, uint64_t *ms) KV_MUST_CHECK;

/* The kernel parameters kvmini adds for a faster boot, each unless the
 * user's command line names the same parameter (README: "Kernel command
 * line defaults"): @name is the parameter, @param what is added. */
struct cmdline_default {
	const char *name;
	const char *param;
};
extern const struct cmdline_default config_cmdline_defaults[];
extern const unsigned config_nr_cmdline_defaults;

/* The guest command line: the user's, plus console=ttyS0 when it names no
 * console, plus panic=-1 under --exec when it names no panic= (a guest
 * without the pvpanic driver then resets rather than hanging until
 * --timeout), plus, with cmdline_defaults, each of
 * config_cmdline_defaults whose parameter it does not name. Returns 0,
 * or -ENAMETOOLONG if it does not fit @len. */
int config_build_cmdline(const struct kv_config *cfg, char *buf, size_t len) KV_MUST_CHECK;

void config_print_usage(FILE *f);

#endif
