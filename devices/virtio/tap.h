/* Internals of virtio-net shared with its unit test: opening a tap and
 * building the device on any packet fd (the test uses a datagram
 * socketpair, which keeps packet boundaries the way a tap does). */
#ifndef KVMINI_DEVICES_VIRTIO_TAP_H
#define KVMINI_DEVICES_VIRTIO_TAP_H

#include <stdint.h>
#include "kvmini/virtio_net.h"

/* What the tap accepted when probed with TUNSETOFFLOAD (TUN_F_* bits). */
struct tap_caps {
	unsigned offloads;
};

/* Opens (or creates, with CAP_NET_ADMIN) tap @name with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR, a 12-byte vnet header (virtio_net_hdr_v1)
 * and O_NONBLOCK; probes the offloads and leaves them all off. Returns
 * the fd or a negative errno with @e naming the tap and the fix. */
int tap_open(const char *name, struct tap_caps *caps, struct kv_err *e) KV_MUST_CHECK;

/* Sets the offloads the guest can receive (TUNSETOFFLOAD). 0 or -errno. */
int tap_set_offloads(int fd, unsigned offloads) KV_MUST_CHECK;

/* virtio_net_create on an open fd (taken over: closed on failure and by
 * virtio_dev_fini). @caps NULL: no offloads offered. */
int virtio_net_create_on_fd(int fd, const struct tap_caps *caps, const char *label,
			    const struct virtio_net_cfg *cfg, const struct guest_mem *mem,
			    struct evloop *loop, struct virtio_dev *dev,
			    struct kv_err *e) KV_MUST_CHECK;

/* The fd's event-loop callback (exported so unit tests can drive it
 * without starting the loop thread). Takes dev->lock. */
void virtio_net_tap_event(void *dev, uint32_t events);

/* The largest packet a receive path must hold: header + 64 KiB GSO
 * frame + Ethernet/VLAN headers. */
#define VNET_HDR_LEN 12
#define VNET_MAX_PACKET (VNET_HDR_LEN + 65550)

#endif
