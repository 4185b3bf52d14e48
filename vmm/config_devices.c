/* --disk, --net, --share, --console -> struct config_devices. Pure: no I/O (files
 * and taps are opened, and their errors reported, when the VM is built). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/config_devices.h"
#include "kvmini/init_plan.h"
#include "kvmini/layout.h"

/* Splits @arg at commas into @parts (in @buf). Returns the count or -E2BIG. */
static int split_commas(const char *arg, char *buf, size_t len, char **parts, int max)
{
	int n = 0;
	char *p, *save = NULL;

	if (strlen(arg) >= len)
		return -E2BIG;
	strcpy(buf, arg);
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (n == max)
			return -E2BIG;
		parts[n++] = p;
	}
	return n;
}

static int parse_transport(const char *opt, const char *v, enum virtio_transport *t,
			   struct kv_err *e)
{
	if (!strcmp(v, "pci"))
		*t = VIRTIO_TRANSPORT_PCI;
	else if (!strcmp(v, "mmio"))
		*t = VIRTIO_TRANSPORT_MMIO;
	else
		return kv_err_set(e, -EINVAL, "%s: transport '%s': use pci or mmio", opt, v);
	return 0;
}

int config_add_disk(struct config_devices *d, const char *arg, struct kv_err *e)
{
	char buf[4096], *parts[8];
	struct vm_disk *disk;
	int n;

	if (d->nr_disks == CONFIG_MAX_DISKS)
		return kv_err_set(e, -E2BIG, "--disk: at most %d disks", CONFIG_MAX_DISKS);
	n = split_commas(arg, buf, sizeof(buf), parts, 8);
	if (n <= 0 || arg[0] == ',')
		return kv_err_set(e, -EINVAL, "--disk '%s': expected PATH[,ro][,snapshot][,transport=pci|mmio]", arg);
	disk = &d->disks[d->nr_disks];
	memset(disk, 0, sizeof(*disk));
	disk->blk.index = d->nr_disks;
	/* Options follow the first comma, so a path cannot contain one. */
	if (strlen(parts[0]) >= sizeof(d->paths[0]))
		return kv_err_set(e, -ENAMETOOLONG, "--disk: path longer than %zu bytes", sizeof(d->paths[0]) - 1);
	strcpy(d->paths[d->nr_disks], parts[0]);
	disk->blk.path = d->paths[d->nr_disks];
	for (int i = 1; i < n; i++) {
		if (!strcmp(parts[i], "ro"))
			disk->blk.readonly = true;
		else if (!strcmp(parts[i], "snapshot"))
			disk->blk.snapshot = true;
		else if (!strncmp(parts[i], "transport=", 10)) {
			if (parse_transport("--disk", parts[i] + 10, &disk->transport, e))
				return -EINVAL;
		} else
			return kv_err_set(e, -EINVAL, "--disk '%s': unknown option '%s' (use ro, snapshot, transport=pci|mmio)",
					  arg, parts[i]);
	}
	if (disk->blk.readonly && disk->blk.snapshot)
		return kv_err_set(e, -EINVAL, "--disk '%s': ro and snapshot exclude each other (snapshot already leaves the image untouched)", arg);
	d->nr_disks++;
	return 0;
}

/* "52:54:00:12:34:56" -> 6 bytes; must be unicast. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -EINVAL;
	if (strlen(s) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return mac[0] & 1 ? -EINVAL : 0; /* a multicast address cannot be a NIC's */
}

/* A port number 1..65535, all digits. */
static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "[tcp|udp]:[HOSTADDR]:HOSTPORT-:GUESTPORT" (QEMU's hostfwd= form; the
 * guest address is left out: passt forwards to the guest's own). */
static int parse_hostfwd(const char *v, struct net_forward *f, struct kv_err *e)
{
	char buf[128], *dash, *colon, *addr;
	unsigned char bin[16];

	memset(f, 0, sizeof(*f));
	if (!strncmp(v, "tcp:", 4) || !strncmp(v, "udp:", 4)) {
		f->udp = v[0] == 'u';
		v += 4;
	} else if (v[0] == ':') {
		v++;
	} else {
		goto bad;
	}
	if (strlen(v) >= sizeof(buf))
		goto bad;
	strcpy(buf, v);
	dash = strrchr(buf, '-');
	if (!dash || dash[1] != ':') {
		if (dash && dash[1])
			return kv_err_set(e, -EINVAL, "--net user: hostfwd '%s': the guest side is :GUESTPORT "
					  "(passt forwards to the guest's own address; leave GUESTADDR out)", v);
		goto bad;
	}
	*dash = 0;
	if (parse_port(dash + 2, &f->guest_port))
		goto bad;
	colon = strrchr(buf, ':');
	if (!colon || parse_port(colon + 1, &f->host_port))
		goto bad;
	*colon = 0;
	addr = buf;
	if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') {
		addr[strlen(addr) - 1] = 0;
		addr++;
		if (inet_pton(AF_INET6, addr, bin) != 1)
			goto bad_addr;
	} else if (*addr && inet_pton(AF_INET, addr, bin) != 1) {
		goto bad_addr;
	}
	if (strlen(addr) >= sizeof(f->host_addr))
		goto bad_addr;
	strcpy(f->host_addr, addr);
	return 0;
bad_addr:
	return kv_err_set(e, -EINVAL, "--net user: hostfwd: host address '%s' is not an IPv4 address "
			  "or a bracketed IPv6 one", addr);
bad:
	return kv_err_set(e, -EINVAL, "--net user: hostfwd '%s': expected tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT "
			  "with ports 1-65535, like tcp:127.0.0.1:2222-:22", v);
}

/* One option after "user" or "tap=NAME" (mac=, transport=, and for user
 * hostfwd=, passt=). */
static int parse_net_option(struct config_devices *d, struct vm_net *net, const char *arg,
			    const char *opt, struct kv_err *e)
{
	bool user = net->kind == NET_USER;

	if (!strncmp(opt, "mac=", 4)) {
		if (parse_mac(opt + 4, net->net.mac))
			return kv_err_set(e, -EINVAL, "--net: mac '%s': expected six hex bytes like 52:54:00:12:34:56, unicast (first byte even)",
					  opt + 4);
		net->net.mac_set = true;
	} else if (!strncmp(opt, "transport=", 10)) {
		if (parse_transport("--net", opt + 10, &net->transport, e))
			return -EINVAL;
	} else if (user && !strncmp(opt, "hostfwd=", 8)) {
		if (net->user.nr_fwd == NET_MAX_FORWARDS)
			return kv_err_set(e, -E2BIG, "--net user: at most %d hostfwd= forwards", NET_MAX_FORWARDS);
		if (parse_hostfwd(opt + 8, &net->user.fwd[net->user.nr_fwd], e))
			return -EINVAL;
		net->user.nr_fwd++;
	} else if (user && !strncmp(opt, "passt=", 6)) {
		if (!opt[6] || strlen(opt + 6) >= sizeof(d->passts[0]))
			return kv_err_set(e, -EINVAL, "--net user: passt= needs the path of the passt binary");
		strcpy(d->passts[d->nr_nets], opt + 6);
		net->user.passt = d->passts[d->nr_nets];
	} else {
		return kv_err_set(e, -EINVAL, "--net '%s': unknown option '%s' (use %s)", arg, opt,
				  user ? "hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT, passt=PATH, mac=MAC, transport=pci|mmio"
				       : "tap=NAME, mac=MAC, transport=pci|mmio");
	}
	return 0;
}

int config_add_net(struct config_devices *d, const char *arg, struct kv_err *e)
{
	char buf[4096], *parts[2 * NET_MAX_FORWARDS];
	struct vm_net *net;
	int n;

	if (d->nr_nets == CONFIG_MAX_NETS)
		return kv_err_set(e, -E2BIG, "--net: at most %d network devices", CONFIG_MAX_NETS);
	n = split_commas(arg, buf, sizeof(buf), parts, 2 * NET_MAX_FORWARDS);
	if (n <= 0)
		return kv_err_set(e, -EINVAL, "--net '%s': expected user[,hostfwd=...] or tap=NAME, each with [,mac=MAC][,transport=pci|mmio]", arg);
	net = &d->nets[d->nr_nets];
	memset(net, 0, sizeof(*net));
	net->net.index = d->nr_nets;
	/* The kind first (it may come anywhere): it decides the options. */
	int kind_at = -1;

	for (int i = 0; i < n; i++) {
		if (strcmp(parts[i], "user") && strncmp(parts[i], "tap=", 4))
			continue;
		if (kind_at >= 0)
			return kv_err_set(e, -EINVAL, "--net '%s': one of user or tap=NAME, once", arg);
		kind_at = i;
	}
	if (kind_at < 0)
		return kv_err_set(e, -EINVAL, "--net '%s': user (passt, no root needed) or tap=NAME (the host side of the link) is required", arg);
	if (!strcmp(parts[kind_at], "user")) {
		net->kind = NET_USER;
	} else {
		const char *name = parts[kind_at] + 4;

		if (!*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || strchr(name, ' '))
			return kv_err_set(e, -EINVAL, "--net: tap name '%s' is not a valid interface name (1 to %d characters, no '/' or space)",
					  name, IFNAMSIZ - 1);
		strcpy(d->taps[d->nr_nets], name);
		net->tap = d->taps[d->nr_nets];
	}
	for (int i = 0; i < n; i++)
		if (i != kind_at && parse_net_option(d, net, arg, parts[i], e))
			return -EINVAL;
	if (net->kind == NET_USER && !net->net.mac_set) {
		static const uint8_t qemu_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

		memcpy(net->net.mac, qemu_mac, 6);
		net->net.mac[5] = (uint8_t)(0x56 + d->nr_nets);
		net->net.mac_set = true;
	}
	d->nr_nets++;
	return 0;
}

_Static_assert(PLAN_SHARE_TAG_MAX == VIRTIO_FS_TAG_MAX, "the init's tag rule is virtio-fs's");

int config_add_share_dir(struct config_devices *d, const char *dir, const char *tag, bool ro,
			 struct kv_err *e)
{
	unsigned i = d->nr_shares;
	struct vm_share *sh;

	if (i == CONFIG_MAX_SHARES)
		return kv_err_set(e, -E2BIG, "--share: at most %d shared folders", CONFIG_MAX_SHARES);
	if (!*dir)
		return kv_err_set(e, -EINVAL, "--share: the host folder is empty");
	if (strlen(dir) >= sizeof(d->share_paths[0]))
		return kv_err_set(e, -ENAMETOOLONG, "--share: path longer than %zu bytes",
				  sizeof(d->share_paths[0]) - 1);
	if (!plan_share_tag_ok(tag))
		return kv_err_set(e, -EINVAL, "--share %s: tag '%s': use 1 to %d letters, digits, '.', '_' "
				  "or '-' (not starting with '.'), e.g. --share %s:data", dir, tag,
				  VIRTIO_FS_TAG_MAX, dir);
	for (unsigned j = 0; j < i; j++)
		if (!strcmp(d->share_tags[j], tag))
			return kv_err_set(e, -EINVAL, "--share %s: tag '%s' is already %s's: give each "
					  "share its own tag (--share %s:OTHER)", dir, tag,
					  d->share_paths[j], dir);
	sh = &d->shares[i];
	memset(sh, 0, sizeof(*sh));
	strcpy(d->share_paths[i], dir);
	strcpy(d->share_tags[i], tag);
	sh->fs.path = d->share_paths[i];
	sh->fs.tag = d->share_tags[i];
	sh->fs.readonly = ro;
	sh->fs.index = i;
	d->nr_shares++;
	return 0;
}

/* The default tag: the folder's last name ("./src/" -> "src"). */
static void default_tag(const char *dir, char *tag, size_t len)
{
	size_t n = strlen(dir);
	const char *base;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	base = dir + n;
	while (base > dir && base[-1] != '/')
		base--;
	snprintf(tag, len, "%.*s", (int)(dir + n - base), base);
	if (!strcmp(tag, "/") || !strcmp(tag, ".") || !strcmp(tag, ".."))
		tag[0] = '\0';
}

static int share_option(struct vm_share *sh, const char *arg, const char *o, struct kv_err *e)
{
	static const char *const caches[] = { "auto", "always", "never" };

	if (!strcmp(o, "ro")) {
		sh->fs.readonly = true;
		return 0;
	}
	if (!strcmp(o, "rw"))
		return 0;
	if (!strncmp(o, "transport=", 10))
		return parse_transport("--share", o + 10, &sh->transport, e);
	if (!strncmp(o, "cache=", 6)) {
		for (unsigned c = 0; c < 3; c++) {
			if (!strcmp(o + 6, caches[c])) {
				sh->fs.cache = (enum fuse_cache)c;
				return 0;
			}
		}
		return kv_err_set(e, -EINVAL, "--share '%s': %s: use cache=auto, always or never", arg, o);
	}
	return kv_err_set(e, -EINVAL, "--share '%s': unknown option '%s' (use ro, cache=auto|always|never, "
			  "transport=pci|mmio)", arg, o);
}

int config_add_share(struct config_devices *d, const char *arg, struct kv_err *e)
{
	char buf[4200], tag[VIRTIO_FS_TAG_MAX + 8], *parts[8], *colon;
	int n = split_commas(arg, buf, sizeof(buf), parts, 8);
	unsigned i = d->nr_shares;

	if (n <= 0 || arg[0] == ',' || arg[0] == ':')
		return kv_err_set(e, -EINVAL, "--share '%s': expected HOSTDIR[:TAG][,ro][,cache=auto|always|never]"
				  "[,transport=pci|mmio]", arg);
	/* The last ':' starts the tag: a folder whose name has one needs :TAG. */
	colon = strrchr(parts[0], ':');
	if (colon) {
		*colon = '\0';
		snprintf(tag, sizeof(tag), "%s", colon + 1);
	} else {
		default_tag(parts[0], tag, sizeof(tag));
		if (!plan_share_tag_ok(tag))
			return kv_err_set(e, -EINVAL, "--share %s: no usable tag from the folder's name: "
					  "name one, e.g. --share %s:data", parts[0], parts[0]);
	}
	int r = config_add_share_dir(d, parts[0], tag, false, e);

	if (r)
		return r;
	for (int k = 1; k < n; k++) {
		if (share_option(&d->shares[i], arg, parts[k], e)) {
			d->nr_shares--;
			return -EINVAL;
		}
	}
	return 0;
}

int config_set_console(struct config_devices *d, const char *arg, struct kv_err *e)
{
	if (!strcmp(arg, "serial")) {
		d->console = CONSOLE_SERIAL;
		return 0;
	}
	if (!strncmp(arg, "virtio", 6) && (arg[6] == '\0' || arg[6] == ',')) {
		d->console = CONSOLE_VIRTIO;
		d->console_transport = VIRTIO_TRANSPORT_PCI;
		if (arg[6] == ',' && strncmp(arg + 7, "transport=", 10))
			return kv_err_set(e, -EINVAL, "--console '%s': use serial, virtio or virtio,transport=pci|mmio", arg);
		if (arg[6] == ',')
			return parse_transport("--console", arg + 17, &d->console_transport, e);
		return 0;
	}
	return kv_err_set(e, -EINVAL, "--console '%s': use serial (default) or virtio (hvc0)", arg);
}

unsigned config_nr_mmio(const struct config_devices *d)
{
	unsigned n = d->console == CONSOLE_VIRTIO && d->console_transport == VIRTIO_TRANSPORT_MMIO;

	for (unsigned i = 0; i < d->nr_disks; i++)
		n += d->disks[i].transport == VIRTIO_TRANSPORT_MMIO;
	for (unsigned i = 0; i < d->nr_nets; i++)
		n += d->nets[i].transport == VIRTIO_TRANSPORT_MMIO;
	for (unsigned i = 0; i < d->nr_shares; i++)
		n += d->shares[i].transport == VIRTIO_TRANSPORT_MMIO;
	return n;
}

int config_check_devices(const struct config_devices *d, struct kv_err *e)
{
	unsigned total = d->nr_disks + d->nr_nets + d->nr_shares + (d->console == CONSOLE_VIRTIO);
	unsigned mmio = config_nr_mmio(d);

	if (mmio > LAYOUT_VIRTIO_MMIO_MAX)
		return kv_err_set(e, -E2BIG, "%u virtio-mmio devices: at most %d (use transport=pci for the others)",
				  mmio, LAYOUT_VIRTIO_MMIO_MAX);
	if (total - mmio > LAYOUT_PCI_MAX_SLOTS)
		return kv_err_set(e, -E2BIG, "%u virtio-pci devices: at most %d PCI slots (use transport=mmio for the others)",
				  total - mmio, LAYOUT_PCI_MAX_SLOTS);
	return 0;
}
