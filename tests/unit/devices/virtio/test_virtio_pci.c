/* virtio-pci: config space and capabilities as Linux's virtio_pci_modern
 * walks them, BAR0 registers, kicks, INTx/ISR and MSI-X, hostile
 * accesses (fixture: pci_fixture.h; the state machine, memory decoding
 * and MSI routing rules are in test_virtio_pci_state.c). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../check_main.h"
#include "pci_fixture.h"

START_TEST(identity)
{
	ck_assert_uint_eq(cfg_read(0x00, 4), 0x1042u << 16 | 0x1af4);
	ck_assert_uint_eq(cfg_read(0x08, 1), 1);
	ck_assert_uint_eq(cfg_read(0x08, 4) >> 8, 0x010000);
	ck_assert_uint_eq(cfg_read(0x0e, 1), 0);
	ck_assert_uint_eq(cfg_read(0x2c, 4), 2u << 16 | 0x1af4);
	ck_assert_uint_eq(cfg_read(0x3d, 1), 1);
	ck_assert_uint_eq(cfg_read(0x3c, 1), LAYOUT_PCI_GSI(1));
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	for (unsigned bar = 0x14; bar <= 0x24; bar += 4)
		ck_assert_uint_eq(cfg_read(bar, 4), 0);
}
END_TEST

START_TEST(capability_chain)
{
	static const uint32_t min_len[6] = { 0, 0x38, NQ * 4, 1, 8, 0 };
	struct vcap caps[6];
	unsigned msix_at;

	walk_caps(caps, &msix_at);
	for (unsigned t = 1; t <= 5; t++) {
		ck_assert_uint_ne(caps[t].at, 0);
		ck_assert_uint_eq(caps[t].bar, 0);
		if (t == 5)
			continue;
		ck_assert_uint_ge(caps[t].len, min_len[t]);
		ck_assert_uint_le(caps[t].off + caps[t].len, LAYOUT_PCI_BAR_SIZE);
	}
	ck_assert_uint_eq(cfg_read(caps[2].at + 16, 4), 4); /* notify_off_multiplier */
	ck_assert_uint_ne(msix_at, 0);
	ck_assert_uint_eq(cfg_read(msix_at + 2, 2), NQ); /* table size - 1 */
	uint32_t table = cfg_read(msix_at + 4, 4), pba = cfg_read(msix_at + 8, 4);
	ck_assert_uint_eq(table & 7, 0);
	ck_assert_uint_eq(pba & 7, 0);
	ck_assert_uint_le((table & ~7u) + (NQ + 1) * 16, LAYOUT_PCI_BAR_SIZE);
	/* No region overlaps another. */
	uint32_t start[6] = { caps[1].off, caps[2].off, caps[3].off, caps[4].off,
			      table & ~7u, pba & ~7u };
	uint32_t len[6] = { caps[1].len, caps[2].len, caps[3].len, caps[4].len,
			    (NQ + 1) * 16, 8 };
	for (unsigned i = 0; i < 6; i++)
		for (unsigned j = i + 1; j < 6; j++)
			ck_assert(start[i] + len[i] <= start[j] || start[j] + len[j] <= start[i]);
}
END_TEST

START_TEST(bar_sizing)
{
	uint32_t orig = cfg_read(0x10, 4);

	cfg_write(0x10, 4, 0xffffffffu);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)~(LAYOUT_PCI_BAR_SIZE - 1));
	cfg_write(0x10, 4, orig);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	/* The BAR cannot move. */
	cfg_write(0x10, 4, 0xe0000000u);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	cfg_write(0x12, 2, 0x1234);
	ck_assert_uint_eq(cfg_read(0x10, 4), (uint32_t)BAR);
	for (unsigned bar = 0x14; bar <= 0x24; bar += 4) {
		cfg_write(bar, 4, 0xffffffffu);
		ck_assert_uint_eq(cfg_read(bar, 4), 0);
	}
	cfg_write(0x30, 4, 0xfffffffeu); /* expansion ROM: none */
	ck_assert_uint_eq(cfg_read(0x30, 4), 0);
	/* Memory decode off: BAR0 reads zeros, writes are ignored. */
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
	mem_enable();
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
}
END_TEST

START_TEST(read_only_config_registers)
{
	uint8_t before[256];

	for (unsigned r = 0; r < 256; r++)
		before[r] = (uint8_t)cfg_read(r, 1);
	for (unsigned r = 0; r < 256; r += 4)
		if (r != 0x10 && r != 0x04 && r != 0x0c && r != 0x3c && !(r >= 0x84 && r < 0x98))
			cfg_write(r, 4, 0xffffffffu);
	cfg_write(0x98, 2, 0xffff); /* MSI-X cap id/next */
	for (unsigned r = 0; r < 256; r++) {
		if (r == 0x9b) /* MSI-X control high byte: enable and mask */
			ck_assert_uint_eq(cfg_read(r, 1), before[r] | 0xc0);
		else if (!(r >= 0x84 && r < 0x98) && r != 0x0c && r != 0x3c)
			ck_assert_uint_eq(cfg_read(r, 1), before[r]);
	}
	/* Command: memory, bus master and INTx disable only. */
	cfg_write(0x04, 2, 0xffff);
	ck_assert_uint_eq(cfg_read(0x04, 2), 0x0406);
}
END_TEST

START_TEST(feature_negotiation)
{
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), dev.features & 0xffffffffu);
	ck_assert_uint_ne(bar_read(VIRTIO_PCI_COMMON_DF, 4) & (1u << 5), 0);
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), 1); /* VERSION_1 */
	bar_write(VIRTIO_PCI_COMMON_DFSELECT, 4, 7);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_DF, 4), 0);

	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 5);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 9);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 0xffffffffu); /* no such word: ignored */
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32 | 1u << 5);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x0b);
	/* Features are frozen after FEATURES_OK. */
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 0);
	ck_assert_uint_eq(dev.driver_features, 1ULL << 32 | 1u << 5);

	/* Reset, then features the device did not offer: FEATURES_OK stays clear. */
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0);
	ck_assert_uint_eq(fdev.resets, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 3);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1u << 6);
	bar_write(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_GF, 4, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0b);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_STATUS, 1), 0x03);

	/* Device config region goes to the device's ops. */
	ck_assert_uint_eq(bar_read(0x2000, 4), 0x44332211u);
	bar_write(0x2006, 2, 0xabcd);
	ck_assert_uint_eq(fdev.config[6], 0xcd);
	ck_assert_uint_eq(bar_read(0x2006, 4), 0); /* past config_len */
}
END_TEST

START_TEST(queue_configuration)
{
	driver_features_ok();
	driver_setup_queue(0, QSIZE);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), fr.vq.desc_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 4), fr.vq.avail_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_USEDLO + 4, 4), 0);
	/* Misaligned halves are ignored. */
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO + 2, 4, 0xdeadbeef);
	bar_write(VIRTIO_PCI_COMMON_Q_AVAILLO + 1, 2, 0xbeef);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), fr.vq.desc_gpa);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_AVAILLO, 8), fr.vq.avail_gpa);
	/* Larger than the maximum: kept at the old size. */
	bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, QSIZE * 2);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
	ck_assert(dev.vqs[0].enabled);
	/* A live queue cannot be reconfigured. */
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1000);
	ck_assert_uint_eq(dev.vqs[0].desc_gpa, fr.vq.desc_gpa);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);
	ck_assert(dev.vqs[0].enabled);

	/* Vectors: only < table size or NO_VECTOR. */
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), NQ);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, NQ + 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 0x7777);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0);

	/* Queue 1 with a size that is not a power of two: vq_enable refuses
	 * and the device needs a reset. */
	driver_setup_queue(1, 3);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_ne(bar_read(VIRTIO_PCI_COMMON_STATUS, 1) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);

	/* Out of range queue_select: reads 0, writes ignored. */
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 100);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 100);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_DESCLO, 8), 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SIZE, 2, 4);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_Q_DESCLO, 8, 0x1000);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);

	/* Reset: queues and vectors forgotten. */
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_MSIX, 2), 0xffff);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_MSIX, 2), 0xffff);
}
END_TEST

START_TEST(notify_through_event_loop)
{
	struct evloop *loop;
	struct kv_err e = { 0 };

	/* Re-create with an event loop and no ioeventfd: the MMIO write
	 * handler signals the eventfd, the loop thread calls queue_notify. */
	virtio_pci_destroy(vp);
	ck_assert_int_eq(evloop_create(&loop, &e), 0);
	host.loop = loop;
	pci_root_destroy(root);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	bus_init(&pio, BUS_PIO);
	bus_init(&mmio, BUS_MMIO);
	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
	ck_assert_int_eq(virtio_pci_create(root, &host, &dev, &vp, &e), 0);
	ck_assert_int_eq(evloop_start(loop, NULL, &e), 0);

	driver_features_ok();
	driver_setup_queue(1, QSIZE);
	bar_write(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	/* Not live yet (no DRIVER_OK): a kick is consumed, nothing runs. */
	bar_write(0x3000 + 4, 2, 1);
	bar_write(VIRTIO_PCI_COMMON_STATUS, 1, 0x0f);
	ck_assert_uint_eq(fdev.activations, 1);
	bar_write(0x3000 + 4, 2, 1);
	for (int i = 0; i < 2000 && !__atomic_load_n(&fdev.notified[1], __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	ck_assert_uint_ge(__atomic_load_n(&fdev.notified[1], __ATOMIC_SEQ_CST), 1);
	/* Queue 0 is not enabled, so its kick does nothing; misaligned and
	 * out-of-range notify writes are dropped. */
	bar_write(0x3000, 2, 0);
	bar_write(0x3001, 1, 0);
	bar_write(0x3000 + 4 * 7, 4, 0);
	usleep(20000);
	ck_assert_uint_eq(__atomic_load_n(&fdev.notified[0], __ATOMIC_SEQ_CST), 0);
	virtio_pci_destroy(vp);
	vp = NULL;
	evloop_destroy(loop);
}
END_TEST

START_TEST(isr_and_intx)
{
	mem_enable();
	notify_queue(0);
	ck_assert_int_eq(firq.level, 1);
	ck_assert_uint_eq(firq.gsi, LAYOUT_PCI_GSI(1));
	ck_assert_uint_ne(cfg_read(0x06, 2) & 0x08, 0); /* interrupt status */
	notify_config();
	ck_assert_int_eq(firq.raises, 1);
	ck_assert_uint_eq(bar_read(0x1000, 1), 3);
	ck_assert_int_eq(firq.level, 0);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
	ck_assert_int_eq(firq.lowers, 1);
	/* INTx disable holds the line low until re-enabled. */
	cfg_write(0x04, 2, 0x0406);
	notify_config();
	ck_assert_int_eq(firq.level, 0);
	cfg_write(0x04, 2, 0x0006);
	ck_assert_int_eq(firq.level, 1);
	ck_assert_uint_eq(bar_read(0x1000, 4), 2);
	ck_assert_int_eq(firq.level, 0);
	/* ISR writes are ignored. */
	bar_write(0x1000, 1, 0xff);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
}
END_TEST

START_TEST(msix_masked_pending_then_delivered)
{
	unsigned at = msix_cap();
	uint32_t table = cfg_read(at + 4, 4), pba = cfg_read(at + 8, 4);

	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
	bar_write(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
	cfg_write(at + 2, 2, 0x8000 | 0x4000); /* enable, function mask */
	bar_write(table + 16, 4, 0xfee00000u);
	bar_write(table + 20, 4, 0);
	bar_write(table + 24, 4, 0x4041);
	ck_assert_uint_eq(bar_read(table + 28, 4), 1); /* starts masked */
	notify_queue(0);
	ck_assert_int_eq(firq.raises, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	/* Vector unmasked, function still masked: pending stays. */
	bar_write(table + 28, 4, 0);
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 1);
	ck_assert_int_eq(fhost.routes, 0);
	/* Function unmask: route programmed from the table, message sent. */
	cfg_write(at + 2, 2, 0x8000);
	ck_assert_int_eq(fhost.routes, 1);
	ck_assert_uint_eq(fhost.last_addr, 0xfee00000u);
	ck_assert_uint_eq(fhost.last_data, 0x4041);
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	/* Unmasked: delivered at once. */
	notify_queue(0);
	ck_assert_uint_eq(eventfd_count(fhost.last_fd), 1);
	ck_assert_int_eq(fhost.routes, 1);
	/* New message data while unmasked: the route follows. */
	bar_write(table + 24, 4, 0x4042);
	ck_assert_int_eq(fhost.routes, 2);
	ck_assert_uint_eq(fhost.last_data, 0x4042);
	/* No vector for config: nothing at all. */
	notify_config();
	ck_assert_uint_eq(bar_read(pba, 8), 0);
	ck_assert_int_eq(firq.raises, 0);
	ck_assert_uint_eq(bar_read(0x1000, 1), 0);
	/* Vector control has only the mask bit. */
	bar_write(table + 28, 4, 0xfffffffeu);
	ck_assert_uint_eq(bar_read(table + 28, 4), 0);
	/* MSI-X off again: back to INTx. */
	cfg_write(at + 2, 2, 0);
	notify_queue(0);
	ck_assert_int_eq(firq.level, 1);
}
END_TEST

START_TEST(msix_without_msi_route_stays_pending)
{
	unsigned at, table, pba;

	teardown();
	create(false);
	at = msix_cap();
	table = cfg_read(at + 4, 4);
	pba = cfg_read(at + 8, 4);
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_MSIX, 2, 2);
	cfg_write(at + 2, 2, 0x8000);
	bar_write(table + 2 * 16 + 12, 4, 0);
	notify_config();
	ck_assert_uint_eq(bar_read(pba, 8), 1u << 2);
	ck_assert_int_eq(firq.raises, 0);
}
END_TEST

START_TEST(pci_cfg_window)
{
	struct vcap caps[6];
	unsigned at;

	walk_caps(caps, &at);
	at = caps[5].at;
	mem_enable();
	cfg_write(at + 4, 1, 0);
	cfg_write(at + 8, 4, VIRTIO_PCI_COMMON_NUMQ);
	cfg_write(at + 12, 4, 2);
	ck_assert_uint_eq(cfg_read(at + 16, 2), NQ);
	cfg_write(at + 8, 4, VIRTIO_PCI_COMMON_Q_SELECT);
	cfg_write(at + 16, 2, 1);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_Q_SELECT, 2), 1);
	/* Bad windows are harmless. */
	static const uint32_t bad[][3] = { { 1, 0, 4 }, { 0, 1, 4 }, { 0, 0, 3 },
					   { 0, 0xffff, 2 }, { 0, 0xfffffffcu, 4 } };
	for (unsigned i = 0; i < 5; i++) {
		cfg_write(at + 4, 1, bad[i][0]);
		cfg_write(at + 8, 4, bad[i][1]);
		cfg_write(at + 12, 4, bad[i][2]);
		cfg_read(at + 16, 4);
		cfg_write(at + 16, 4, 0xffffffffu);
	}
}
END_TEST

START_TEST(hostile_accesses)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned seed = 7;

	mem_enable();
	for (int i = 0; i < 20000; i++) {
		uint64_t v = (uint64_t)rand_r(&seed) << 32 | (unsigned)rand_r(&seed);
		unsigned len = sizes[rand_r(&seed) % 4];
		/* Mostly the interesting regions, sometimes anywhere. */
		uint64_t off = (unsigned)rand_r(&seed) % 8 ? ((unsigned)rand_r(&seed) % 6) * 0x1000 +
					 (unsigned)rand_r(&seed) % 0x40
				       : (unsigned)rand_r(&seed) % (LAYOUT_PCI_BAR_SIZE - 8);
		bool wr = rand_r(&seed) & 1;

		if (off == VIRTIO_PCI_COMMON_STATUS && wr)
			continue; /* keep memory decode and reset churn bounded below */
		ck_assert_int_eq(bus_dispatch(&mmio, BAR + off, &v, len, wr), 0);
		if (i % 16 == 0) {
			unsigned reg = (unsigned)rand_r(&seed) % 256;
			unsigned clen = sizes[rand_r(&seed) % 3];

			reg &= ~(clen - 1);
			if (reg != 0x04 && rand_r(&seed) & 1)
				cfg_write(reg, clen, (uint32_t)v);
			else
				cfg_read(reg, clen);
		}
	}
	/* Read-only common registers survived. */
	mem_enable();
	bar_write(VIRTIO_PCI_COMMON_NUMQ, 2, 77);
	ck_assert_uint_eq(bar_read(VIRTIO_PCI_COMMON_NUMQ, 2), NQ);
	bar_write(0x15, 1, 9);
	ck_assert_uint_eq(cfg_read(0x00, 4), 0x1042u << 16 | 0x1af4);
	/* Straddling the BAR's end is not ours. */
	uint64_t v = 0;
	ck_assert_int_eq(bus_dispatch(&mmio, BAR + LAYOUT_PCI_BAR_SIZE - 2, &v, 4, false), -ENOENT);
}
END_TEST

START_TEST(bus_full)
{
	struct virtio_dev more[LAYOUT_PCI_MAX_SLOTS];
	struct virtio_pci *vps[LAYOUT_PCI_MAX_SLOTS];
	struct kv_err e = { 0 };
	unsigned n = 0;
	int r = 0;

	for (; n < LAYOUT_PCI_MAX_SLOTS; n++) {
		virtio_dev_init(&more[n], "virtio-more", VIRTIO_ID_CONSOLE, 0, 2, 8, 0, &fd_ops,
				&fdev, &fr.gm, NULL);
		r = virtio_pci_create(root, &host, &more[n], &vps[n], &e);
		if (r)
			break;
	}
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_uint_eq(n, LAYOUT_PCI_MAX_SLOTS - 1);
	virtio_dev_fini(&more[n]);
	/* The console has no device config: no device cap in its chain. */
	uint32_t a = 0x80000000u | 2u << 11 | 0x08, v = 0;
	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC, &v, 4, false), 0);
	ck_assert_uint_eq(v >> 8, 0x078000);
	while (n--) {
		virtio_pci_destroy(vps[n]);
		virtio_dev_fini(&more[n]);
	}
	/* Slot 2 is empty again. */
	ck_assert_int_eq(bus_dispatch(&pio, CF8, &a, 4, true), 0);
	ck_assert_int_eq(bus_dispatch(&pio, CFC, &v, 4, false), 0);
	ck_assert_uint_eq(v, 0xffffffffu);
}
END_TEST

static Suite *virtio_pci_suite(void)
{
	Suite *s = suite_create("virtio_pci");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, identity);
	tcase_add_test(tc, capability_chain);
	tcase_add_test(tc, bar_sizing);
	tcase_add_test(tc, read_only_config_registers);
	tcase_add_test(tc, feature_negotiation);
	tcase_add_test(tc, queue_configuration);
	tcase_add_test(tc, notify_through_event_loop);
	tcase_add_test(tc, isr_and_intx);
	tcase_add_test(tc, msix_masked_pending_then_delivered);
	tcase_add_test(tc, msix_without_msi_route_stays_pending);
	tcase_add_test(tc, pci_cfg_window);
	tcase_add_test(tc, hostile_accesses);
	tcase_add_test(tc, bus_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(virtio_pci_suite());
}
