/* Parsing of the device options --disk, --net, --share and --console: pure
 * functions, unit-tested (tests/unit/vmm/test_config_devices.c). */
#ifndef KVMINI_CONFIG_DEVICES_H
#define KVMINI_CONFIG_DEVICES_H

#include "kvmini/err.h"
#include "kvmini/net_passt.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_fs.h"
#include "kvmini/virtio_net.h"

/* How a device reaches the guest: virtio-pci (default: Debian's stock
 * kernel finds it by its PCI probe) or virtio-mmio (described in ACPI
 * and on the command line). */
enum virtio_transport { VIRTIO_TRANSPORT_PCI, VIRTIO_TRANSPORT_MMIO };

/* The devices a VM gets, as parsed from --disk / --net / --console. */
struct vm_disk {
	struct virtio_blk_cfg blk;
	enum virtio_transport transport;
};
/* A NIC's host side: a tap, or passt (--net user). */
enum net_kind { NET_TAP, NET_USER };
struct vm_net {
	struct virtio_net_cfg net;
	enum virtio_transport transport;
	enum net_kind kind;
	const char *tap;                /* NET_TAP: the interface */
	struct net_user_cfg user;       /* NET_USER: forwards, the binary */
};
struct vm_share {
	struct virtio_fs_cfg fs;
	enum virtio_transport transport;
};
enum console_kind { CONSOLE_SERIAL, CONSOLE_VIRTIO };

#define CONFIG_MAX_DISKS 8
#define CONFIG_MAX_NETS  4
#define CONFIG_MAX_SHARES 8

/* The virtio devices of a run, in the order the VM creates them
 * (console, disks, nets, shares): virtio-mmio devices get their slots in
 * that order. */
struct config_devices {
	struct vm_disk disks[CONFIG_MAX_DISKS];
	unsigned nr_disks;
	struct vm_net nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	struct vm_share shares[CONFIG_MAX_SHARES];
	unsigned nr_shares;
	enum console_kind console;
	enum virtio_transport console_transport;
	char paths[CONFIG_MAX_DISKS][4096]; /* disk paths, cut at the first comma */
	char taps[CONFIG_MAX_NETS][16];     /* tap names (IFNAMSIZ) */
	char passts[CONFIG_MAX_NETS][4096]; /* --net user,passt=PATH */
	char share_paths[CONFIG_MAX_SHARES][4096];
	char share_tags[CONFIG_MAX_SHARES][VIRTIO_FS_TAG_MAX + 1];
};

/* "PATH[,ro][,snapshot][,transport=pci|mmio]" appended to @d. */
int config_add_disk(struct config_devices *d, const char *arg, struct kv_err *e) KV_MUST_CHECK;
/* "tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,transport=pci|mmio]" or
 * "user[,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...[,passt=PATH]
 * [,mac=...][,transport=...]" appended to @d. A user NIC without mac=
 * gets QEMU's 52:54:00:12:34:56 (+ its index), so the guest's init can
 * find it by its address (kvmini.dhcp= on the command line). */
int config_add_net(struct config_devices *d, const char *arg, struct kv_err *e) KV_MUST_CHECK;
/* "HOSTDIR[:TAG][,ro][,cache=auto|always|never][,transport=pci|mmio]"
 * appended to @d; TAG defaults to the folder's last name. */
int config_add_share(struct config_devices *d, const char *arg, struct kv_err *e) KV_MUST_CHECK;
/* The same, from its parts (--rootfs: the root's share). */
int config_add_share_dir(struct config_devices *d, const char *dir, const char *tag, bool ro,
			 struct kv_err *e) KV_MUST_CHECK;
/* "serial" or "virtio[,transport=pci|mmio]". */
int config_set_console(struct config_devices *d, const char *arg, struct kv_err *e) KV_MUST_CHECK;
/* Checks the totals against the PCI slots and virtio-mmio windows. */
int config_check_devices(const struct config_devices *d, struct kv_err *e) KV_MUST_CHECK;
/* How many devices use virtio-mmio (they take mmio slots 0..n-1). */
unsigned config_nr_mmio(const struct config_devices *d);

#endif
