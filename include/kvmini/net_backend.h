/* The host side of a virtio-net device (devices/net/): where the guest's
 * packets go and where its received packets come from. virtio-net
 * (devices/virtio/net*.c) sees only this interface.
 *
 * Every packet crossing the interface starts with the 12-byte
 * virtio_net_hdr_v1, as the guest's rings carry it:
 *  - packet backend (tap.c): a Linux tap with IFF_VNET_HDR, or any fd
 *    that keeps packet boundaries (a SOCK_SEQPACKET socket in the tests):
 *    the header passes through, so offloads cost nothing;
 *  - stream backend (stream.c): QEMU's stream protocol, as passt speaks
 *    it: each Ethernet frame preceded by its length as a 32-bit
 *    big-endian number, no header on the wire (so no offloads); frames
 *    are gathered into one buffer and written together on flush;
 *  - passt (passt.c, kvmini/net_passt.h): the stream backend on a
 *    socketpair whose other end is a passt process kvmini starts. */
#ifndef KVMINI_NET_BACKEND_H
#define KVMINI_NET_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "kvmini/err.h"

/* virtio_net_hdr_v1: what virtio 1.x puts before every packet. */
#define VNET_HDR_LEN 12
/* The largest packet a receive path must hold: header + 64 KiB GSO
 * frame + Ethernet/VLAN headers. */
#define VNET_MAX_PACKET (VNET_HDR_LEN + 65550)
/* The largest frame on a stream (no header there). */
#define NET_STREAM_MAX_FRAME (VNET_MAX_PACKET - VNET_HDR_LEN)
/* The smallest: an Ethernet header. */
#define NET_STREAM_MIN_FRAME 14

struct net_backend;

struct net_backend_ops {
	/* Sends one guest packet (header + frame, @len bytes in @iov).
	 * 1: sent or taken (buffered until flush); 0: the backend is full,
	 * keep the packet and retry after EPOLLOUT; -EPIPE: the backend is
	 * gone; another -errno: this packet was dropped (errno says why). */
	int (*send)(struct net_backend *be, const struct iovec *iov, unsigned niov, size_t len);
	/* Writes out what send buffered. 1: nothing left; 0: wait for
	 * EPOLLOUT; -EPIPE: the backend is gone. NULL: send never buffers. */
	int (*flush)(struct net_backend *be);
	/* Receives one packet (header + frame) into @iov, which holds at
	 * least VNET_MAX_PACKET bytes. Its length; 0: none now; -EPIPE: the
	 * backend is gone (peer closed); -EMSGSIZE: a bad packet was
	 * dropped (go on); another -errno: a transient error (retry later). */
	ssize_t (*recv)(struct net_backend *be, const struct iovec *iov, unsigned niov);
	/* The offloads (TUN_F_*) the guest can receive from now on.
	 * NULL: the backend has none. */
	int (*set_offloads)(struct net_backend *be, unsigned offloads);
	/* Why the backend is gone: a sentence for the log (what passt said
	 * before it exited). NULL: "the peer closed the connection". */
	void (*describe_end)(struct net_backend *be, char *buf, size_t len);
	/* Releases everything (fd, buffers, a child process). */
	void (*destroy)(struct net_backend *be);
};

struct net_backend {
	const struct net_backend_ops *ops;
	int fd;                 /* what the event loop watches */
	unsigned offloads;      /* TUN_F_* the backend can carry (0: none) */
	uint16_t mtu;           /* offered as VIRTIO_NET_F_MTU when nonzero */
	char label[64];         /* "tap 'tap0'", "passt": for messages */
};

/* ---- packet backend (tap.c) ---- */

/* What the tap accepted when probed with TUNSETOFFLOAD (TUN_F_* bits). */
struct tap_caps {
	unsigned offloads;
};

/* Opens (or creates, with CAP_NET_ADMIN) tap @name with IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR, a 12-byte vnet header and O_NONBLOCK;
 * probes the offloads and leaves them all off. Returns the fd or a
 * negative errno with @e naming the tap and the fix. */
int tap_open(const char *name, struct tap_caps *caps, struct kv_err *e) KV_MUST_CHECK;

/* Sets the offloads the guest can receive (TUNSETOFFLOAD). 0 or -errno. */
int tap_set_offloads(int fd, unsigned offloads) KV_MUST_CHECK;

/* A backend on @fd, which keeps packet boundaries and carries the vnet
 * header (taken over: closed on failure and by destroy). @offloads: what
 * set_offloads may pass to TUNSETOFFLOAD (0 for a socket). */
int net_packet_backend_new(int fd, unsigned offloads, const char *label,
			   struct net_backend **out, struct kv_err *e) KV_MUST_CHECK;

/* tap_open + net_packet_backend_new. */
int net_tap_backend_open(const char *name, struct net_backend **out,
			 struct kv_err *e) KV_MUST_CHECK;

/* ---- stream backend (stream.c) ---- */

/* Who is at the other end of a stream, when the backend owns it (passt):
 * told when the backend ends and when it is destroyed. */
struct net_stream_peer {
	/* Why the peer stopped talking: a sentence for the log. */
	void (*describe_end)(void *ctx, char *buf, size_t len);
	/* After the socket is closed: release the peer (reap a child). */
	void (*release)(void *ctx);
	void *ctx;
};

/* A backend on a connected SOCK_STREAM socket speaking QEMU's stream
 * protocol (taken over: closed on failure and by destroy). @mtu: what
 * the peer assigns the guest (offered to it); 0 for none. @peer: NULL,
 * or copied. */
int net_stream_backend_new(int fd, uint16_t mtu, const char *label,
			   const struct net_stream_peer *peer,
			   struct net_backend **out, struct kv_err *e) KV_MUST_CHECK;

static inline void net_backend_destroy(struct net_backend *be)
{
	if (be)
		be->ops->destroy(be);
}

#endif
