/* Opening /dev/kvm and checking that it offers what kvmini relies on. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kvmini/kvm.h"

struct required_cap {
	long cap;
	const char *name;
};

/* Every capability a Linux guest under kvmini depends on. */
static const struct required_cap required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQ_INJECT_STATUS, "KVM_CAP_IRQ_INJECT_STATUS" },
};

int kvm_check_cap(int kvm_fd, long cap)
{
	return ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap);
}

int kvm_open(struct kv_err *e)
{
	const char *path = getenv("KVMINI_DEV_KVM");
	int fd, version, err;

	if (!path || !*path)
		path = "/dev/kvm";
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == ENOENT)
			return kv_err_set(e, -err,
				"%s does not exist: KVM is not available on this host; load the kvm_intel or kvm_amd module "
				"(and enable VT-x/AMD-V in the firmware), or run in a VM with nested virtualization",
				path);
		if (err == EACCES || err == EPERM)
			return kv_err_set(e, -err,
				"%s: permission denied; add your user to the 'kvm' group (sudo adduser $USER kvm, then log in again) or run as root",
				path);
		return kv_err_set(e, -err, "cannot open %s: %s", path, strerror(err));
	}
	version = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		close(fd);
		return kv_err_set(e, -ENOTSUP, "%s speaks KVM API version %d, kvmini needs %d",
				  path, version, KVM_API_VERSION);
	}
	for (size_t i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (kvm_check_cap(fd, required_caps[i].cap) <= 0) {
			close(fd);
			return kv_err_set(e, -ENOTSUP, "%s lacks %s, which kvmini needs; use a newer host kernel",
					  path, required_caps[i].name);
		}
	}
	return fd;
}

static bool cpuinfo_has_flag(const char *flag)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return true; /* cannot tell: do not block the user */
	while (!found && fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "flags", 5))
			continue;
		for (p = strtok(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \n"); p;
		     p = strtok(NULL, " \n"))
			if (!strcmp(p, flag))
				found = true;
		break; /* the first CPU's flags are enough */
	}
	fclose(f);
	return found;
}

bool kvm_host_lacks_hw_virt(char *why, size_t len)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0) {
		snprintf(why, len, "the host's KVM is the paravirtual kvm_pvm module");
		return true;
	}
	if (!cpuinfo_has_flag("vmx") && !cpuinfo_has_flag("svm")) {
		snprintf(why, len, "the host CPU shows neither vmx (VT-x) nor svm (AMD-V)");
		return true;
	}
	return false;
}
