/* "kvmini run ..." -> struct kv_config. Pure: no I/O but the usage text. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/config.h"

int config_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	/* Accept "512M", "512MB", "512MiB". */
	if (shift && (!strcmp(end, "B") || !strcmp(end, "iB")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (v == 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int config_parse_duration(const char *s, uint64_t *ms)
{
	static const struct { const char *suffix; uint64_t ms; } units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
	};
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (v == 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return -ERANGE;
		*ms = (uint64_t)v * units[i].ms;
		return 0;
	}
	return -EINVAL;
}

int config_parse_memory(const char *arg, struct kv_config *cfg, struct kv_err *e)
{
	char size[64];
	const char *comma = strchr(arg, ',');
	size_t n = comma ? (size_t)(comma - arg) : strlen(arg);

	if (n < sizeof(size)) {
		memcpy(size, arg, n);
		size[n] = '\0';
	}
	if (n >= sizeof(size) || config_parse_size(size, &cfg->memory))
		return kv_err_set(e, -EINVAL,
			"--memory '%s': not a size; use a positive number with an optional K, M, G "
			"suffix (e.g. 512M, 2G), then optionally ,hugetlb and/or ,prefault", arg);
	cfg->mem_hugetlb = cfg->mem_prefault = false;
	while (comma) {
		const char *opt = comma + 1;
		size_t len;

		comma = strchr(opt, ',');
		len = comma ? (size_t)(comma - opt) : strlen(opt);
		if (len == 7 && !strncmp(opt, "hugetlb", len))
			cfg->mem_hugetlb = true;
		else if (len == 8 && !strncmp(opt, "prefault", len))
			cfg->mem_prefault = true;
		else
			return kv_err_set(e, -EINVAL, "--memory '%s': unknown option '%.*s' "
					  "(use hugetlb or prefault)", arg, (int)len, opt);
	}
	if (cfg->mem_hugetlb && cfg->memory % (2ULL << 20))
		return kv_err_set(e, -EINVAL, "--memory '%s': hugetlb needs a multiple of 2M, the "
				  "huge page size", arg);
	return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

void config_print_usage(FILE *f)
{
	fprintf(f,
"Usage: kvmini run --kernel PATH [options]\n"
"       kvmini --help | --version\n"
"\n"
"Boots a Linux kernel directly under KVM with its console on this terminal.\n"
"\n"
"Options of 'run':\n"
"  --kernel PATH    bzImage (Linux x86 boot protocol >= 2.12) or ELF vmlinux\n"
"                   with a PVH entry note; told apart by content\n"
"  --initrd PATH    initramfs (cpio, optionally compressed) for the guest\n"
"  --cmdline STR    guest kernel command line; console=ttyS0 is added when\n"
"                   it names no console, and the defaults below for each\n"
"                   parameter it does not name\n"
"  --cmdline-defaults=on|off\n"
"                   kernel parameters that spare the guest work kvmini's\n"
"                   PC does not need (default on: pci=noearly\n"
"                   iommu=noaperture; see the README)\n"
"  --memory SIZE[,hugetlb][,prefault]\n"
"                   guest RAM, e.g. 512M, 2G (default 512M), mapped so KVM\n"
"                   can use 2 MiB pages (transparent huge pages); hugetlb:\n"
"                   from the host's reserved 2 MiB huge pages\n"
"                   (/proc/sys/vm/nr_hugepages); prefault: allocate it all\n"
"                   at start rather than as the guest first touches it\n"
"  --cpus N         number of vCPUs (default 1, at most %d)\n"
"  --cpu default|host  the CPU the guest sees: default hides 5-level paging\n"
"                   and VMX/SVM (unreliable or unusable nested); host passes\n"
"                   every feature KVM supports through\n"
"  --boot MODE      auto (default: by content), bzimage, or pvh (a bzImage is\n"
"                   then unpacked in the host, cached under\n"
"                   $XDG_CACHE_HOME/kvmini, and entered through PVH)\n"
"  -q, --quiet      only errors from kvmini itself; with --exec also no\n"
"                   kernel console, so only the command's output shows\n"
"  --exec CMD       run CMD (a shell script, passed byte for byte) as root\n"
"                   in the guest with sh, its stdout and stderr on kvmini's,\n"
"                   then power off; kvmini exits with CMD's status. Needs\n"
"                   root= on --cmdline (kvmini's own init), or --initrd with\n"
"                   an /init that speaks kvmini's protocol\n"
"                   (tools/mkinitramfs.sh). The kernel console goes to\n"
"                   stderr, stdin is not read.\n"
"  --timeout DUR    stop the VM after DUR (500ms, 30s, 5m, 1h; plain\n"
"                   number: seconds) and exit %d\n"
"  --report json[:PATH]\n"
"                   at exit, write one JSON object with boot milestones\n"
"                   (seconds since kvmini started), exit status, stop\n"
"                   reason and peak RSS to PATH (default: stderr)\n"
"  --seccomp=on|off per-thread system call filters (default on; off only to\n"
"                   debug: see SECURITY.md)\n"
"\n"
"Own initramfs (no --initrd, root= on --cmdline, e.g. --disk root.img\n"
"--cmdline root=/dev/vda): kvmini boots with its built-in init and the\n"
"modules the machine needs from the kernel's own module tree; the root is\n"
"read-only (rw on --cmdline: writable) with tmpfs on /tmp, /run, /var/tmp,\n"
"/var/log and tmpfs-backed overlays on /var/lib, /var/cache:\n"
"  --modules DIR    the kernel's module tree (default /lib/modules/RELEASE,\n"
"                   RELEASE read from the kernel image)\n"
"  --workdir DIR    --exec's working directory in the guest (default: this\n"
"                   directory when the root has it, else /root)\n"
"  --exec-boot auto|direct|system  how --exec's command runs: direct, as\n"
"                   soon as the root is mounted; system, after the root's own\n"
"                   init (systemd) has booted, as a service, then a clean\n"
"                   shutdown; auto (default): system for a disk root whose\n"
"                   /sbin/init is systemd, else direct\n"
"  --overlay PATH   make guest folder PATH writable, the writes kept in memory\n"
"                   and dropped at exit (repeatable)\n"
"  --rootfs DIR[,rw]  boot from host folder DIR as the root, over virtio-fs\n"
"                   (read-only unless rw; no --initrd, no root= needed), e.g.\n"
"                   --rootfs / --exec 'make check' runs the host's own tools\n"
"\n"
"Devices (virtio; transport=pci by default, transport=mmio for virtio-mmio):\n"
"  --disk PATH[,ro][,snapshot][,transport=...]\n"
"                   a raw disk image as /dev/vda, vdb, ... (repeatable, up to %d);\n"
"                   ro: read-only for the guest; snapshot: the guest's writes\n"
"                   go to a private overlay dropped at exit, the image is\n"
"                   never written\n"
"  --net user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,passt=PATH]\n"
"                   a NIC on passt (no root needed; DHCP gives the host's\n"
"                   address, the gateway reaches the host's loopback);\n"
"                   hostfwd: a host port forwarded to the guest\n"
"  --net tap=NAME[,mac=MAC][,transport=...]\n"
"                   a NIC on host tap device NAME (created when missing and\n"
"                   kvmini has CAP_NET_ADMIN); a random local MAC by default\n"
"  --share HOSTDIR[:TAG][,ro][,cache=auto|always|never][,transport=...]\n"
"                   host folder HOSTDIR over virtio-fs (repeatable, up to %d);\n"
"                   the guest mounts it with 'mount -t virtiofs TAG DIR' (TAG:\n"
"                   the folder's name by default); confined to HOSTDIR, files\n"
"                   created belong to the user running kvmini; ro refuses writes\n"
"  --console serial|virtio[,transport=...]\n"
"                   where the guest's console and this terminal's input go:\n"
"                   serial (default, ttyS0) or virtio (hvc0; console=hvc0 is\n"
"                   added when the command line names no console)\n"
"\n"
"Console: with a terminal on stdin it is put in raw mode; Ctrl-A x quits,\n"
"Ctrl-A Ctrl-A sends Ctrl-A. Piped stdin is fed as the guest reads it;\n"
"stdin at EOF or /dev/null leaves the guest running without input.\n"
"\n"
"Exit status:\n"
"  0    the guest powered off or rebooted (or Ctrl-A x)\n"
"  N    --exec: the command's exit status N (0-255) as the guest reported it\n"
"  %d  the guest kernel panicked (reported through pvpanic; the initramfs of\n"
"       tools/mkinitramfs.sh loads its driver)\n"
"  %d  the guest crashed: triple fault, failed VM entry, KVM internal error\n"
"       (a register dump is printed on stderr)\n"
"  %d  --exec: the guest powered off or rebooted without reporting a status\n"
"  %d  --timeout fired\n"
"  %d  kvmini failed: bad arguments, unusable kernel/initrd, host or KVM error\n"
"  128+N  stopped by signal N (SIGINT, SIGTERM, SIGHUP, SIGQUIT)\n"
"A command may itself exit with 121-125 or 128+N: kvmini passes its status\n"
"through, so a script that must tell them apart should use --report json\n"
"(its command_status is a number only when the command's status came back).\n",
		CONFIG_MAX_CPUS, KVMINI_EXIT_TIMEOUT, CONFIG_MAX_DISKS, CONFIG_MAX_SHARES,
		KVMINI_EXIT_GUEST_PANIC,
		KVMINI_EXIT_GUEST_CRASH, KVMINI_EXIT_NO_STATUS, KVMINI_EXIT_TIMEOUT,
		KVMINI_EXIT_FAILURE);
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS, OPT_BOOT,
       OPT_CPU, OPT_DISK, OPT_NET, OPT_SHARE, OPT_CONSOLE, OPT_EXEC, OPT_TIMEOUT, OPT_REPORT, OPT_SECCOMP,
       OPT_CMDLINE_DEFAULTS, OPT_INIT /* kvmini's own initramfs: config_init.c */ };

/* --exec, --timeout, --report. */
static int parse_ci_option(int c, const char *arg, struct kv_config *cfg, struct kv_err *e)
{
	switch (c) {
	case OPT_EXEC:
		if (!*arg)
			return kv_err_set(e, -EINVAL, "--exec: the command is empty");
		cfg->exec = arg;
		return 0;
	case OPT_TIMEOUT:
		if (config_parse_duration(arg, &cfg->timeout_ms))
			return kv_err_set(e, -EINVAL,
				"--timeout '%s': not a duration; use a positive whole number with an optional "
				"unit ms, s, m or h (e.g. 500ms, 30s, 5m; plain number: seconds)", arg);
		return 0;
	case OPT_REPORT:
		if (!strcmp(arg, "json")) {
			cfg->report_json = true;
			cfg->report_path = NULL;
		} else if (!strncmp(arg, "json:", 5) && arg[5]) {
			cfg->report_json = true;
			cfg->report_path = arg + 5;
		} else {
			return kv_err_set(e, -EINVAL, "--report '%s': use json (to stderr) or json:PATH", arg);
		}
		return 0;
	}
	return kv_err_set(e, -EINVAL, "internal: option %d", c);
}

static int parse_run(int argc, char *const argv[], struct kv_config *cfg, struct kv_err *e)
{
	static const struct option opts[] = {
		{ "kernel",  required_argument, NULL, OPT_KERNEL },
		{ "initrd",  required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "memory",  required_argument, NULL, OPT_MEMORY },
		{ "cpus",    required_argument, NULL, OPT_CPUS },
		{ "cpu",     required_argument, NULL, OPT_CPU },
		{ "boot",    required_argument, NULL, OPT_BOOT },
		{ "quiet",   no_argument,       NULL, 'q' },
		{ "disk",    required_argument, NULL, OPT_DISK },
		{ "net",     required_argument, NULL, OPT_NET },
		{ "share",   required_argument, NULL, OPT_SHARE },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "exec",    required_argument, NULL, OPT_EXEC },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "report",  required_argument, NULL, OPT_REPORT },
		{ "seccomp", required_argument, NULL, OPT_SECCOMP },
		{ "modules", required_argument, NULL, OPT_INIT },
		{ "workdir", required_argument, NULL, OPT_INIT },
		{ "exec-boot", required_argument, NULL, OPT_INIT },
		{ "overlay", required_argument, NULL, OPT_INIT },
		{ "rootfs",  required_argument, NULL, OPT_INIT },
		{ "cmdline-defaults", required_argument, NULL, OPT_CMDLINE_DEFAULTS },
		{ "help",    no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r, idx;

	/* 0, not 1: glibc then forgets everything, including its pointer into
	 * a cluster like "-hq" that an early return (-h) left half-parsed;
	 * with 1 the next parse resumes inside the old, possibly freed, argv. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", opts, &idx)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_MEMORY:
			r = config_parse_memory(optarg, cfg, e);
			if (r)
				return r;
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, CONFIG_MAX_CPUS, &cfg->cpus) || cfg->cpus == 0)
				return kv_err_set(e, -EINVAL, "--cpus '%s': must be a number from 1 to %d",
						  optarg, CONFIG_MAX_CPUS);
			break;
		case OPT_CPU:
			if (strcmp(optarg, "default") && strcmp(optarg, "host"))
				return kv_err_set(e, -EINVAL, "--cpu '%s': use default or host", optarg);
			cfg->cpu_host = !strcmp(optarg, "host");
			break;
		case OPT_BOOT:
			if (!strcmp(optarg, "auto"))
				cfg->boot = BOOT_AUTO;
			else if (!strcmp(optarg, "bzimage"))
				cfg->boot = BOOT_BZIMAGE;
			else if (!strcmp(optarg, "pvh"))
				cfg->boot = BOOT_PVH;
			else
				return kv_err_set(e, -EINVAL, "--boot '%s': use auto, bzimage or pvh", optarg);
			break;
		case 'q': cfg->quiet = true; break;
		case OPT_DISK:
			if (config_add_disk(&cfg->dev, optarg, e))
				return -EINVAL;
			break;
		case OPT_NET:
			if (config_add_net(&cfg->dev, optarg, e))
				return -EINVAL;
			break;
		case OPT_SHARE:
			if (config_add_share(&cfg->dev, optarg, e))
				return -EINVAL;
			break;
		case OPT_CONSOLE:
			if (config_set_console(&cfg->dev, optarg, e))
				return -EINVAL;
			break;
		case OPT_EXEC: case OPT_TIMEOUT: case OPT_REPORT:
			r = parse_ci_option(c, optarg, cfg, e);
			if (r)
				return r;
			break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return kv_err_set(e, -EINVAL, "--seccomp '%s': use on or off", optarg);
			cfg->seccomp = !strcmp(optarg, "on");
			break;
		case OPT_INIT:
			if (config_init_option(&cfg->init, opts[idx].name, optarg, e))
				return -EINVAL;
			break;
		case OPT_CMDLINE_DEFAULTS:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return kv_err_set(e, -EINVAL, "--cmdline-defaults '%s': use on or off",
						  optarg);
			cfg->cmdline_defaults = !strcmp(optarg, "on");
			break;
		case 'h': cfg->action = ACTION_HELP; return 0;
		case ':':
			return kv_err_set(e, -EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return kv_err_set(e, -EINVAL, "unknown option '%s' (see kvmini --help)",
					  argv[optind - 1]);
		}
	}
	if (optind < argc)
		return kv_err_set(e, -EINVAL, "unexpected argument '%s' (see kvmini --help)", argv[optind]);
	if (!cfg->kernel)
		return kv_err_set(e, -EINVAL, "run: --kernel PATH is required");
	if (config_init_rootfs(&cfg->init, &cfg->dev, &cfg->cmdline, cfg->initrd, e))
		return -EINVAL;
	if (config_init_check(&cfg->init, cfg->initrd, cfg->cmdline, cfg->exec != NULL, e))
		return -EINVAL;
	if (cfg->memory < (16ULL << 20))
		return kv_err_set(e, -EINVAL, "--memory: %llu bytes is too small; a Linux guest needs at least 16M",
				  (unsigned long long)cfg->memory);
	return config_check_devices(&cfg->dev, e);
}

int config_parse(int argc, char *const argv[], struct kv_config *cfg, struct kv_err *e)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->memory = CONFIG_DEFAULT_MEMORY;
	cfg->cpus = 1;
	cfg->boot = BOOT_AUTO;
	cfg->seccomp = true;
	cfg->cmdline_defaults = true;

	if (argc < 2)
		return kv_err_set(e, -EINVAL, "no command given (try: kvmini run --kernel PATH, or kvmini --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		cfg->action = ACTION_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		cfg->action = ACTION_VERSION;
		return 0;
	}
	if (strcmp(argv[1], "run"))
		return kv_err_set(e, -EINVAL, "unknown command '%s' (try: kvmini run --kernel PATH)", argv[1]);
	cfg->action = ACTION_RUN;
	return parse_run(argc - 1, argv + 1, cfg, e);
}

/* True when @cmdline has a parameter named exactly @name (before any '=' ). */
static bool cmdline_has_param(const char *cmdline, const char *name)
{
	size_t n = strlen(name);
	const char *p = cmdline;

	while ((p = strstr(p, name))) {
		bool starts = p == cmdline || p[-1] == ' ';
		bool ends = p[n] == '=' || p[n] == ' ' || p[n] == '\0';

		if (starts && ends)
			return true;
		p += n;
	}
	return false;
}

/* Each removes work that kvmini's minimal PC gives a guest no reason
 * to do; the measurements are in the README. */
const struct cmdline_default config_cmdline_defaults[] = {
	/* No early PCI configuration scans (arch/x86/pci/early.c): on a CPU
	 * that says AMD family 0xf-0x15, Linux looks for a GART aperture by
	 * walking all 256 buses' 32 slots through ports 0xcf8/0xcfc, twice:
	 * about 33,000 port exits per boot. kvmini has no GART, no AGP bridge
	 * and no device with an early quirk; the normal PCI scan still runs. */
	{ "pci", "pci=noearly" },
	/* The same aperture search, kept off when the user's own pci=
	 * brings early scans back (it then halves their cost). */
	{ "iommu", "iommu=noaperture" },
};
const unsigned config_nr_cmdline_defaults =
	sizeof(config_cmdline_defaults) / sizeof(config_cmdline_defaults[0]);

/* "kvmini.shares=TAG[:ro],... ": the tags of --share, for the guest's
 * init to mount at /mnt/TAG (Linux 6.1 does not show a virtio-fs tag in
 * sysfs). Tags hold no ',', ':' or space (config_add_share_dir). */
static int append_shares(const struct config_devices *d, char *buf, size_t len, size_t *n)
{
	for (unsigned i = 0; i < d->nr_shares; i++) {
		int w = snprintf(buf + *n, len - *n, "%s%s%s%s", i ? "," : "kvmini.shares=",
				 d->shares[i].fs.tag, d->shares[i].fs.readonly ? ":ro" : "",
				 i + 1 == d->nr_shares ? " " : "");

		if (w < 0 || (size_t)w >= len - *n)
			return -ENAMETOOLONG;
		*n += (size_t)w;
	}
	return 0;
}

/* "kvmini.dhcp=MAC,... ": the --net user NICs, by the MAC config gave
 * them, for the guest's init to bring up with DHCP (passt answers). */
static int append_dhcp(const struct config_devices *d, char *buf, size_t len, size_t *n)
{
	bool first = true;

	for (unsigned i = 0; i < d->nr_nets; i++) {
		const uint8_t *m = d->nets[i].net.mac;
		int w;

		if (d->nets[i].kind != NET_USER)
			continue;
		w = snprintf(buf + *n, len - *n, "%s%02x:%02x:%02x:%02x:%02x:%02x",
			     first ? "kvmini.dhcp=" : ",", m[0], m[1], m[2], m[3], m[4], m[5]);
		if (w < 0 || (size_t)w >= len - *n)
			return -ENAMETOOLONG;
		*n += (size_t)w;
		first = false;
	}
	if (!first) {
		if (*n + 1 >= len)
			return -ENAMETOOLONG;
		buf[(*n)++] = ' ';
		buf[*n] = 0;
	}
	return 0;
}

int config_build_cmdline(const struct kv_config *cfg, char *buf, size_t len)
{
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	size_t n;
	int w;

	const char *console = cmdline_has_param(user, "console") ? "" :
			      cfg->dev.console == CONSOLE_VIRTIO ? "console=hvc0 " : "console=ttyS0 ";
	const char *panic = cfg->exec && !cmdline_has_param(user, "panic") ? "panic=-1 " : "";

	w = snprintf(buf, len, "%s%s", console, panic);
	if (w < 0 || (size_t)w >= len)
		return -ENAMETOOLONG;
	n = (size_t)w;
	for (unsigned i = 0; cfg->cmdline_defaults && i < config_nr_cmdline_defaults; i++) {
		if (cmdline_has_param(user, config_cmdline_defaults[i].name))
			continue;
		w = snprintf(buf + n, len - n, "%s ", config_cmdline_defaults[i].param);
		if (w < 0 || (size_t)w >= len - n)
			return -ENAMETOOLONG;
		n += (size_t)w;
	}
	if (append_shares(&cfg->dev, buf, len, &n) || append_dhcp(&cfg->dev, buf, len, &n))
		return -ENAMETOOLONG;
	w = snprintf(buf + n, len - n, "%s", user);
	if (w < 0 || (size_t)w >= len - n)
		return -ENAMETOOLONG;
	n += (size_t)w;
	/* No trailing space when the user gave nothing. */
	if (n > 0 && buf[n - 1] == ' ' && !*user)
		buf[--n] = '\0';
	return 0;
}
