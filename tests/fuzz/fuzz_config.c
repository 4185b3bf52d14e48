/* Fuzz target: the command-line parsers (vmm/config.c config_parse,
 * config_parse_size, config_build_cmdline; vmm/config_devices.c
 * --disk/--net/--console). The input is a NUL-separated argument list
 * (argv[0] is "kvmini"), each argument copied to its own heap block so
 * ASan sees a read past any of them; every argument is also fed to the
 * size parser and the device-option parsers on their own. */
#include <stdlib.h>
#include <string.h>

#include "kvmini/config.h"
#include "fuzz_common.h"

#define MAX_ARGS 40

void fuzz_init(void)
{
}

static struct kv_config cfg;        /* large (disk paths): not on the stack */
static struct config_devices devs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	struct kv_err e = { 0 };
	size_t at = 0;

	argv[argc++] = strdup("kvmini");
	while (at < size && argc < MAX_ARGS) {
		const uint8_t *end = memchr(data + at, 0, size - at);
		size_t len = end ? (size_t)(end - (data + at)) : size - at;

		argv[argc] = malloc(len + 1);
		if (!argv[argc])
			abort();
		memcpy(argv[argc], data + at, len);
		argv[argc][len] = '\0';
		argc++;
		at += len + 1;
	}
	argv[argc] = NULL;

	if (config_parse(argc, argv, &cfg, &e) == 0) {
		char line[4096];

		if (cfg.action == ACTION_RUN) {
			FUZZ_CHECK(cfg.kernel && cfg.memory >= (16ULL << 20));
			FUZZ_CHECK(cfg.cpus >= 1 && cfg.cpus <= CONFIG_MAX_CPUS);
			FUZZ_CHECK(cfg.dev.nr_disks <= CONFIG_MAX_DISKS &&
				   cfg.dev.nr_nets <= CONFIG_MAX_NETS);
		}
		if (config_build_cmdline(&cfg, line, sizeof(line)) == 0)
			FUZZ_CHECK(strlen(line) < sizeof(line));
	} else {
		FUZZ_CHECK(e.msg[0] != '\0');
	}

	memset(&devs, 0, sizeof(devs));
	for (int i = 1; i < argc; i++) {
		uint64_t v;

		if (config_parse_size(argv[i], &v) == 0)
			FUZZ_CHECK(v != 0);
		switch (argv[i][0] % 3) {
		case 0: (void)!config_add_disk(&devs, argv[i], &e); break;
		case 1: (void)!config_add_net(&devs, argv[i], &e); break;
		case 2: (void)!config_set_console(&devs, argv[i], &e); break;
		}
		FUZZ_CHECK(devs.nr_disks <= CONFIG_MAX_DISKS && devs.nr_nets <= CONFIG_MAX_NETS);
	}
	(void)!config_check_devices(&devs, &e);
	config_nr_mmio(&devs);

	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return 0;
}

static void seed_args(const char *dir, const char *name, const char *const *args)
{
	char buf[1024];
	size_t n = 0;

	for (; *args; args++) {
		size_t len = strlen(*args) + 1;

		memcpy(buf + n, *args, len);
		n += len;
	}
	fuzz_seed(dir, name, buf, n ? n - 1 : 0);
}

void fuzz_write_seeds(const char *dir)
{
	static const char *const full[] = {
		"run", "--kernel", "/boot/vmlinuz", "--initrd", "initrd.img", "--memory", "1G",
		"--cpus", "2", "--cmdline", "quiet root=/dev/vda", "--boot", "pvh",
		"--disk", "disk.img,ro,transport=mmio", "--disk", "b.img,snapshot",
		"--net", "tap=tap0,mac=52:54:00:12:34:56", "--console", "virtio,transport=pci", "-q",
		NULL };
	static const char *const sizes[] = {
		"run", "--kernel=k", "--memory=512M", "64K", "2G", "1T", "1048576", "18446744073709551615",
		"0x10M", NULL };
	static const char *const errors[] = {
		"run", "--kernel", "k", "--cpus", "0", "--memory", "0", "-x", "--net", "tap=",
		"--console", "serial", "--disk", ",ro", NULL };
	static const char *const flags[] = { "run", "-qh", "--kernel", "k", NULL };
	static const char *const help[] = { "--help", NULL };

	seed_args(dir, "full", full);
	seed_args(dir, "sizes", sizes);
	seed_args(dir, "errors", errors);
	seed_args(dir, "flags", flags);
	seed_args(dir, "help", help);
}
