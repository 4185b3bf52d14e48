/* Fuzz target: virtio-net transmit and receive (devices/virtio/net.c):
 * the vnet header and chain handling both ways, with the device on one
 * end of a SOCK_SEQPACKET socketpair (packet boundaries like a tap) and
 * the harness playing both the guest driver (rings from the input) and
 * the network (packets of input-chosen sizes and bytes). The device is
 * created once and reset at the start of every input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvmini/event_loop.h"
#include "kvmini/virtio_net.h"
#include "fuzz_common.h"
#include "kvmini/net_backend.h"

#define RXQ 0
#define TXQ 1
#define F_MRG_RXBUF (1ull << 15)

static struct fr r;
static struct virtio_dev dev;
static struct evloop *loop;
static int net_fd, peer;
static uint8_t pkt[VNET_MAX_PACKET + 64];

void fuzz_init(void)
{
	struct virtio_net_cfg cfg = { .mac = { 0x52, 0x54, 0, 1, 2, 3 },
				      .mac_set = true };
	struct kv_err e = { 0 };
	struct net_backend *be;
	int sv[2];

	fr_init(&r);
	if (evloop_create(&loop, &e) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	net_fd = sv[0];
	peer = sv[1];
	if (net_packet_backend_new(net_fd, 0, "fuzz socket", &be, &e) ||
	    virtio_net_create(&cfg, be, &r.gm, loop, &dev, &e)) {
		fprintf(stderr, "fuzz_net: %s\n", e.msg);
		abort();
	}
}

static void drain(int fd)
{
	while (recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT) >= 0)
		;
}

static void post_tx(struct fz *f, bool indirect)
{
	struct fr_seg s[8];
	uint8_t shape = fz_u8(f);
	unsigned n = 0, nr_data = shape & 3;
	uint64_t hgpa = fr_alloc(&r, VNET_HDR_LEN);

	fz_bytes(f, fr_host(&r, hgpa), VNET_HDR_LEN);
	if (shape & 0x40) {     /* header split where the input says */
		uint32_t cut = 1 + fz_u8(f) % (VNET_HDR_LEN - 1);

		s[n++] = (struct fr_seg){ hgpa, cut, false };
		s[n++] = (struct fr_seg){ hgpa + cut, VNET_HDR_LEN - cut, false };
	} else {
		s[n++] = (struct fr_seg){ hgpa, shape & 0x20 ? fz_u8(f) % VNET_HDR_LEN
							     : VNET_HDR_LEN, false };
	}
	for (unsigned i = 0; i < nr_data; i++) {
		uint16_t len = fz_u16(f);
		uint64_t gpa = fr_alloc(&r, len);

		fz_bytes(f, fr_host(&r, gpa), len < 32 ? len : 32);
		s[n++] = (struct fr_seg){ gpa, len, (shape & 0x10) && i == nr_data - 1 };
	}
	fr_post(&r, TXQ, s, n, indirect);
}

static void post_rx(struct fz *f, bool indirect)
{
	uint8_t shape = fz_u8(f);
	unsigned chains = 1 + (shape & 7);

	for (unsigned c = 0; c < chains; c++) {
		struct fr_seg s[4];
		unsigned n = 1 + (shape >> 3 & 3);

		for (unsigned i = 0; i < n; i++) {
			uint8_t l = fz_u8(f);
			uint32_t len = l & 0x80 ? fz_u16(f) : (l & 0x7f) * 32u;

			s[i] = (struct fr_seg){ fr_alloc(&r, len), len, !((shape & 0x20) && i == 0) };
		}
		fr_post(&r, RXQ, s, n, indirect);
	}
}

static void kick(unsigned q)
{
	pthread_mutex_lock(&dev.lock);
	dev.ops->queue_notify(&dev, q);
	pthread_mutex_unlock(&dev.lock);
}

static void attach(uint64_t features, uint16_t qsize)
{
	pthread_mutex_lock(&dev.lock);
	virtio_dev_set_status(&dev, 0);
	pthread_mutex_unlock(&dev.lock);
	fr_reset(&r);
	fr_attach(&r, &dev, features, qsize);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	uint64_t features = fz_u64(&f);
	uint16_t qsize = (uint16_t)(1u << (fz_u8(&f) % 9));

	drain(peer);
	drain(net_fd);
	attach(features, qsize);
	for (unsigned steps = 0; !fz_empty(&f) && steps < 256; steps++) {
		uint8_t op = fz_u8(&f);

		switch (op % 10) {
		case 0: post_tx(&f, op & 0x10); break;
		case 1: post_rx(&f, op & 0x10); break;
		case 2: kick(TXQ); break;
		case 3: kick(RXQ); break;
		case 4: {
			size_t len = op & 0x80 ? fz_u16(&f) + (op & 0x40 ? 0x10000u : 0) : fz_u8(&f);

			if (len > VNET_MAX_PACKET + 8)
				len = VNET_MAX_PACKET + 8;
			memset(pkt, 0xa5, len);
			fz_bytes(&f, pkt, len < 32 ? len : 32);
			(void)!send(peer, pkt, len, MSG_DONTWAIT);
			virtio_net_backend_event(&dev, EPOLLIN);
			break;
		}
		case 5: {
			static const uint32_t ev[] = { EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLIN | EPOLLOUT };

			virtio_net_backend_event(&dev, ev[op >> 4 & 3]);
			break;
		}
		case 6: drain(peer); break;
		case 7: {
			unsigned ring = fz_u8(&f);
			uint16_t off = fz_u16(&f);

			fr_poke(&r, ring >> 2 & 1, ring % 3, off, fz_u64(&f), 1 + (op >> 4) % 8);
			break;
		}
		case 8: attach(features, qsize); break;
		case 9: {
			uint8_t buf[8];
			unsigned len = 1u << (op >> 4 & 3);
			uint32_t off = fz_u8(&f) % dev.config_len;

			if (off + len <= dev.config_len) {
				pthread_mutex_lock(&dev.lock);
				dev.ops->config_read(&dev, off, buf, len);
				pthread_mutex_unlock(&dev.lock);
			}
			break;
		}
		}
		/* Whatever the guest did, used entries name heads in range. */
		for (unsigned q = 0; q < 2; q++) {
			uint32_t id, len;

			while (fr_used(&r, q, &id, &len))
				FUZZ_CHECK(r.used_poked || id < r.q[q].size);
		}
	}
	return 0;
}

void fuzz_write_seeds(const char *dir)
{
	struct fw w = { .n = 0 };

	for (unsigned mrg = 0; mrg < 2; mrg++) {
		w.n = 0;
		fw_u64(&w, mrg ? F_MRG_RXBUF : 0);
		fw_u8(&w, 4);                           /* 16 entries */
		fw_u8(&w, 0); fw_u8(&w, 2);             /* TX: header + 2 segments */
		for (unsigned k = 0; k < VNET_HDR_LEN; k++)
			fw_u8(&w, 0);
		fw_u16(&w, 14); for (unsigned k = 0; k < 14; k++) fw_u8(&w, 0xff);
		fw_u16(&w, 100); for (unsigned k = 0; k < 32; k++) fw_u8(&w, (uint8_t)k);
		fw_u8(&w, 2);                           /* kick TX */
		fw_u8(&w, 6);                           /* network drains */
		fw_u8(&w, 1); fw_u8(&w, 0x03);          /* RX: 4 chains of 1 buffer */
		for (unsigned k = 0; k < 4; k++)
			fw_u8(&w, mrg ? 20 : 0x80), mrg ? (void)0 : fw_u16(&w, 2048);
		fw_u8(&w, 3);                           /* kick RX */
		fw_u8(&w, 0x84); fw_u16(&w, 1500);      /* a 1500-byte packet */
		for (unsigned k = 0; k < 32; k++)
			fw_u8(&w, (uint8_t)(k * 3));
		fw_u8(&w, 4); fw_u8(&w, 60);            /* a 60-byte packet */
		for (unsigned k = 0; k < 32; k++)
			fw_u8(&w, (uint8_t)k);
		fw_u8(&w, 9); fw_u8(&w, 0);             /* config */
		fuzz_seed(dir, mrg ? "mrg" : "plain", w.buf, w.n);
	}
}
