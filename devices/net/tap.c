/* Opening a Linux tap for a network backend: one place that turns the kernel's
 * errnos into messages saying what to do. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/net_backend.h"

int tap_set_offloads(int fd, unsigned offloads)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offloads) < 0 ? -errno : 0;
}

/* Each group is offered to the guest only when the tap accepts it. */
static unsigned tap_probe_offloads(int fd)
{
	static const unsigned groups[] = {
		TUN_F_CSUM,
		TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
		TUN_F_UFO,
	};
	unsigned ok = 0;

	if (tap_set_offloads(fd, TUN_F_CSUM) < 0)
		return 0;
	ok = TUN_F_CSUM;
	for (size_t i = 1; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (tap_set_offloads(fd, TUN_F_CSUM | groups[i]) == 0)
			ok |= groups[i];
	return ok;
}

static int tap_name_check(const char *name, struct kv_err *e)
{
	if (!name || !*name)
		return kv_err_set(e, -EINVAL, "virtio-net: no tap interface name given");
	if (strlen(name) > IFNAMSIZ - 1)
		return kv_err_set(e, -ENAMETOOLONG,
				  "tap '%s': interface name too long (at most %d characters)",
				  name, IFNAMSIZ - 1);
	if (strpbrk(name, "/%: \t\n"))
		return kv_err_set(e, -EINVAL,
				  "tap '%s': not a valid interface name (no '/', '%%', ':' or spaces)",
				  name);
	return 0;
}

int tap_open(const char *name, struct tap_caps *caps, struct kv_err *e)
{
	struct ifreq ifr;
	int hdr_len = VNET_HDR_LEN;
	int fd, r;

	r = tap_name_check(name, e);
	if (r < 0)
		return r;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
			return kv_err_set(e, r, "tap '%s': /dev/net/tun is missing: load the "
					  "tun module (modprobe tun)", name);
		if (r == -EACCES || r == -EPERM)
			return kv_err_set(e, r, "tap '%s': cannot open /dev/net/tun (%s): run "
					  "with CAP_NET_ADMIN or give this user access to it",
					  name, strerror(-r));
		return kv_err_set(e, r, "tap '%s': opening /dev/net/tun: %s", name, strerror(-r));
	}
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		if (r == -EPERM || r == -EACCES)
			kv_err_set(e, r, "tap '%s': not allowed to create or attach it: run with "
				   "CAP_NET_ADMIN or create it first: ip tuntap add %s mode tap "
				   "user $USER", name, name);
		else if (r == -EBUSY)
			kv_err_set(e, r, "tap '%s': in use by another process (one process per "
				   "tap queue): stop it or choose another tap", name);
		else if (r == -EINVAL)
			kv_err_set(e, r, "tap '%s': exists but is not a tap (a tun device or "
				   "other flags?): delete it or choose another name", name);
		else
			kv_err_set(e, r, "tap '%s': TUNSETIFF: %s", name, strerror(-r));
		goto fail;
	}
	/* virtio 1.x always has num_buffers: the 12-byte virtio_net_hdr_v1
	 * passes between the guest and the tap unchanged. */
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		r = kv_err_set(e, -errno, "tap '%s': TUNSETVNETHDRSZ %d: %s (kernel too old?)",
			       name, hdr_len, strerror(errno));
		goto fail;
	}
	caps->offloads = tap_probe_offloads(fd);
	r = tap_set_offloads(fd, 0);
	if (r < 0) {
		kv_err_set(e, r, "tap '%s': TUNSETOFFLOAD 0: %s", name, strerror(-r));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return r;
}
