/* The fixture of the virtio-mmio suites (test_virtio_mmio.c,
 * test_virtio_mmio_state.c): a small fake device over 64 KiB of malloc'd
 * guest RAM, the real virtio core, a running event loop, an optional fake
 * KVM ioeventfd table, and the register accesses a driver makes. */
#ifndef KVMINI_TEST_MMIO_FIXTURE_H
#define KVMINI_TEST_MMIO_FIXTURE_H

#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/event_loop.h"
#include "kvmini/virtio_mmio.h"
#include "../fakes.h"

#define BASE 0xd0000000ULL
#define GSI 5
#define RAM_SIZE (64 * 1024)
#define NR_QUEUES 2
#define QUEUE_MAX 64
#define CONFIG_LEN 12
#define DEV_FEATURES ((1ULL << 5) | (1ULL << 40))

/* Registers (§4.2.2), spelled out here so the test checks the layout
 * rather than reusing the transport's constants. */
enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR_ID = 0x00c,
	R_DEV_FEATURES = 0x010, R_DEV_FEATURES_SEL = 0x014,
	R_DRV_FEATURES = 0x020, R_DRV_FEATURES_SEL = 0x024,
	R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038,
	R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050,
	R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
	R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_DRIVER_LO = 0x090, R_DRIVER_HI = 0x094,
	R_DEVICE_LO = 0x0a0, R_DEVICE_HI = 0x0a4, R_CONFIG_GEN = 0x0fc, R_CONFIG = 0x100,
};

/* The fake device: a config space of CONFIG_LEN bytes and kick counters
 * (bumped on the loop thread). When told to, it pops the chains a kick
 * finds and holds them, like a disk with I/O in flight. */
struct fake_dev {
	uint8_t config[CONFIG_LEN];
	atomic_int kicks[NR_QUEUES];
	int activations, resets;
	bool hold;                       /* pop and hold chains on a kick */
	uint16_t held[NR_QUEUES][8];
	unsigned nr_held[NR_QUEUES];
	int stops[NR_QUEUES];
	bool enabled_during_stop;
};

/* A fake KVM ioeventfd table. */
struct fake_ioevent {
	uint64_t addr;
	unsigned len;
	int64_t datamatch;
	int fd;
	bool assigned;
};

struct mmio_fixture {
	uint8_t *ram;
	struct guest_mem gm;
	struct bus mmio;
	struct fake_irq irq;
	struct irq_sink sink;
	struct evloop *loop;
	struct virtio_host host;
	struct virtio_dev dev;
	struct fake_dev fd;
	struct virtio_mmio *mm;
	struct fake_ioevent ioev[NR_QUEUES];
	int ioev_assigns, ioev_deassigns;
};

extern struct mmio_fixture t;
extern const struct virtio_dev_ops fake_ops;

/* "I/O completes": every chain the fake holds on @q goes to the used
 * ring (lock held). */
void fake_complete(struct virtio_dev *d, unsigned q);
/* The transport at BASE (setup_ioeventfd: with the fake KVM table). */
void setup(void);
void setup_ioeventfd(void);
void teardown(void);
/* Register accesses through the bus, asserted to be claimed. */
uint64_t rd(uint64_t off, unsigned len);
void wr(uint64_t off, unsigned len, uint64_t v);
uint32_t rd32(uint64_t off);
void wr32(uint64_t off, uint32_t v);
/* The driver: VERSION_1 and FEATURES_OK; queue @q of @size with rings
 * from @desc and QueueReady = 1; DRIVER_OK. */
void negotiate(void);
void setup_queue(unsigned q, uint32_t size, uint64_t desc);
void driver_ok(void);
/* Kicks the device saw on @q; waiting (2 s at most) for @want of them;
 * time for a wrong kick to arrive. */
int kicks(unsigned q);
void wait_kicks(unsigned q, int want);
void settle(void);
/* Guest memory fields; a writable 64-byte chain posted on @q as @head
 * and kicked; where setup_queue put the used ring for @desc. */
void ram16(uint64_t gpa, uint16_t v);
uint16_t ram16_get(uint64_t gpa);
void post_and_kick(unsigned q, uint64_t desc, uint16_t head);
uint64_t used_of(uint64_t desc);

#endif
