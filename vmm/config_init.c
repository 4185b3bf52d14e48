/* --modules, --workdir, --overlay, --rootfs (include/kvmini/config_init.h).
 * Pure: no I/O (the root's folder is opened with the other shares). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/config_devices.h"

#include "kvmini/config_init.h"
#include "kvmini/init_conf.h"
#include "kvmini/init_plan.h"

int config_init_option(struct config_init *ci, const char *opt, const char *arg, struct kv_err *e)
{
	char err[512];

	if (!*arg)
		return kv_err_set(e, -EINVAL, "--%s: the value is empty", opt);
	if (!strcmp(opt, "modules")) {
		ci->modules_dir = arg;
	} else if (!strcmp(opt, "workdir")) {
		if (arg[0] != '/' || strchr(arg, '\n'))
			return kv_err_set(e, -EINVAL, "--workdir '%s': give an absolute path in the guest, "
					  "without newlines", arg);
		ci->workdir = arg;
	} else if (!strcmp(opt, "exec-boot")) {
		int b = exec_boot_parse(arg);

		if (b < 0)
			return kv_err_set(e, -EINVAL, "--exec-boot '%s': expected auto, direct or system", arg);
		ci->exec_boot = b;
		ci->exec_boot_set = true;
	} else if (!strcmp(opt, "overlay")) {
		if (ci->nr_overlays == CONFIG_MAX_OVERLAYS)
			return kv_err_set(e, -EINVAL, "--overlay: at most %d folders", CONFIG_MAX_OVERLAYS);
		if (plan_check_overlay(arg, err, sizeof(err)))
			return kv_err_set(e, -EINVAL, "--%s", err);
		ci->overlays[ci->nr_overlays++] = arg;
	} else if (!strcmp(opt, "rootfs")) {
		const char *comma = strchr(arg, ',');
		size_t n = comma ? (size_t)(comma - arg) : strlen(arg);

		if (comma && strcmp(comma, ",rw") && strcmp(comma, ",ro"))
			return kv_err_set(e, -EINVAL, "--rootfs '%s': expected DIR[,rw] (read-only by default)", arg);
		if (!n || n >= sizeof(ci->rootfs))
			return kv_err_set(e, -EINVAL, "--rootfs '%s': give the host folder to boot from", arg);
		memcpy(ci->rootfs, arg, n);
		ci->rootfs[n] = '\0';
		ci->rootfs_rw = comma && !strcmp(comma, ",rw");
	} else {
		return kv_err_set(e, -EINVAL, "internal: option --%s", opt);
	}
	return 0;
}

bool config_init_own(const char *initrd, const char *user_cmdline)
{
	struct kcmdline k;

	if (initrd || !user_cmdline)
		return false;
	return !kcmdline_parse(user_cmdline, &k, NULL, 0) && k.root[0];
}

int config_init_rootfs(struct config_init *ci, struct config_devices *dev, const char **cmdline,
		       const char *initrd, struct kv_err *e)
{
	const char *user = *cmdline ? *cmdline : "";
	struct kcmdline k;
	int n, r;

	if (!ci->rootfs[0])
		return 0;
	if (initrd)
		return kv_err_set(e, -EINVAL, "--rootfs %s boots with kvmini's own initramfs and init: "
				  "drop --initrd", ci->rootfs);
	if (!kcmdline_parse(user, &k, NULL, 0) && k.root[0])
		return kv_err_set(e, -EINVAL, "--rootfs %s names the root itself: drop root=%s from --cmdline",
				  ci->rootfs, k.root);
	r = config_add_share_dir(dev, ci->rootfs, CONFIG_ROOTFS_TAG, !ci->rootfs_rw, e);
	if (r)
		return kv_err_prefix(e, "--rootfs");
	n = snprintf(ci->cmdline, sizeof(ci->cmdline), "%s%sroot=" CONFIG_ROOTFS_TAG
		     " rootfstype=virtiofs %s", user, *user ? " " : "", ci->rootfs_rw ? "rw" : "ro");
	if (n < 0 || (size_t)n >= sizeof(ci->cmdline))
		return kv_err_set(e, -ENAMETOOLONG, "--cmdline: too long with --rootfs's root=");
	*cmdline = ci->cmdline;
	return 0;
}

int config_init_check(const struct config_init *ci, const char *initrd, const char *user_cmdline,
		      bool exec, struct kv_err *e)
{
	struct kcmdline k;
	char err[512];
	const char *opt = ci->modules_dir ? "--modules" : ci->workdir ? "--workdir" :
			  ci->nr_overlays ? "--overlay" : ci->exec_boot_set ? "--exec-boot" : NULL;

	if (user_cmdline && kcmdline_parse(user_cmdline, &k, err, sizeof(err)))
		return kv_err_set(e, -EINVAL, "--cmdline: %s", err);
	if (opt && initrd)
		return kv_err_set(e, -EINVAL, "%s works only with kvmini's own initramfs: drop --initrd "
				  "and name the root on the command line (root=/dev/vda)", opt);
	if (opt && !config_init_own(initrd, user_cmdline))
		return kv_err_set(e, -EINVAL, "%s needs root= on --cmdline (e.g. --disk root.img "
				  "--cmdline root=/dev/vda): kvmini then boots with its own initramfs", opt);
	if (exec && !initrd && !config_init_own(initrd, user_cmdline))
		return kv_err_set(e, -EINVAL,
				  "--exec needs a root for the command: root= on --cmdline (e.g. --disk "
				  "root.img --cmdline root=/dev/vda; kvmini brings its own init), or --initrd "
				  "with an /init that knows kvmini's protocol (tools/mkinitramfs.sh)");
	if (ci->exec_boot_set && !exec)
		return kv_err_set(e, -EINVAL, "--exec-boot says how --exec's command runs: give --exec CMD");
	if (ci->exec_boot == EXEC_BOOT_SYSTEM && ci->rootfs[0])
		return kv_err_set(e, -EINVAL, "--exec-boot system boots the root's own init: not with "
				  "--rootfs (the host's system is not booted; use direct)");
	return 0;
}
