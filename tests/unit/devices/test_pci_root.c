/* pci_root: configuration mechanism #1 as arch/x86/pci/direct.c uses it. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/pci_root.h"
#include "kvmini/layout.h"
#include "../check_main.h"

#define CF8 PORT_PCI_CONFIG
#define CFC (PORT_PCI_CONFIG + 4)

/* Linux's PCI_CONF1_ADDRESS, with AMD's extended register bits. */
#define CONF1(bus, devfn, reg) \
	(0x80000000u | (((reg) & 0xf00u) << 16) | ((bus) << 16) | ((devfn) << 8) | ((reg) & 0xfcu))

static struct bus pio;
static struct pci_root *root;

static void setup(void)
{
	struct kv_err e = { 0 };

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(pci_root_create(&pio, &root, &e), 0);
}

static void teardown(void)
{
	pci_root_destroy(root);
	bus_destroy(&pio);
}

static uint32_t in(uint16_t port, unsigned len)
{
	uint32_t v = 0;

	ck_assert_int_eq(bus_dispatch(&pio, port, &v, len, false), 0);
	return v;
}

static void out(uint16_t port, uint32_t v, unsigned len)
{
	ck_assert_int_eq(bus_dispatch(&pio, port, &v, len, true), 0);
}

/* pci_conf1_read */
static uint32_t conf1_read(unsigned bus, unsigned devfn, unsigned reg, unsigned len)
{
	out(CF8, CONF1(bus, devfn, reg), 4);
	switch (len) {
	case 1: return in((uint16_t)(CFC + (reg & 3)), 1);
	case 2: return in((uint16_t)(CFC + (reg & 2)), 2);
	default: return in(CFC, 4);
	}
}

static void conf1_write(unsigned bus, unsigned devfn, unsigned reg, unsigned len, uint32_t v)
{
	out(CF8, CONF1(bus, devfn, reg), 4);
	switch (len) {
	case 1: out((uint16_t)(CFC + (reg & 3)), v, 1); break;
	case 2: out((uint16_t)(CFC + (reg & 2)), v, 2); break;
	default: out(CFC, v, 4); break;
	}
}

static uint8_t expected_byte(unsigned reg)
{
	static const uint8_t head[16] = {
		0x86, 0x80, 0x57, 0x0d, /* vendor 8086, device 0d57 */
		0x00, 0x00, 0x00, 0x00, /* command, status */
		0x00, 0x00, 0x00, 0x06, /* revision, class 06/00/00 */
		0x00, 0x00, 0x00, 0x00, /* header type 0 */
	};

	return reg < 16 ? head[reg] : 0;
}

START_TEST(latch_readback)
{
	/* pci_check_type1 */
	out(CF8 + 3, 0x01, 1);
	uint32_t saved = in(CF8, 4);
	out(CF8, 0x80000000u, 4);
	ck_assert_uint_eq(in(CF8, 4), 0x80000000u);
	out(CF8, saved, 4);
	ck_assert_uint_eq(in(CF8, 4), saved);
	out(CF8, 0x12345677u, 4);
	ck_assert_uint_eq(in(CF8, 4), 0x12345674u); /* bits 1:0 read as zero */
	/* Narrow accesses are not the latch. */
	ck_assert_uint_eq(in(CF8, 1), 0xff);
	ck_assert_uint_eq(in(CF8 + 2, 2), 0xffff);
	out(CF8, 0, 1);
	out(CF8 + 2, 0, 2);
	ck_assert_uint_eq(in(CF8, 4), 0x12345674u);
}
END_TEST

START_TEST(host_bridge_all_offsets_all_sizes)
{
	for (unsigned reg = 0; reg < 256; reg++) {
		ck_assert_uint_eq(conf1_read(0, 0, reg, 1), expected_byte(reg));
		if (!(reg & 1)) {
			uint32_t w = expected_byte(reg) | expected_byte(reg + 1) << 8;
			ck_assert_uint_eq(conf1_read(0, 0, reg, 2), w);
		}
		if (!(reg & 3)) {
			uint32_t d = 0;
			for (unsigned i = 0; i < 4; i++)
				d |= (uint32_t)expected_byte(reg + i) << (8 * i);
			ck_assert_uint_eq(conf1_read(0, 0, reg, 4), d);
		}
	}
	ck_assert_uint_eq(conf1_read(0, 0, 0x00, 4), 0x0d578086u);
	ck_assert_uint_eq(conf1_read(0, 0, 0x0a, 2), 0x0600);
	ck_assert_uint_eq(conf1_read(0, 0, 0x0e, 1), 0x00);
	/* An unaligned word inside the data dword is two bytes. */
	out(CF8, CONF1(0, 0, 0), 4);
	ck_assert_uint_eq(in(CFC + 1, 2), 0x5780);
}
END_TEST

/* pci_sanity_check: some devfn on bus 0 has a host bridge class word. */
START_TEST(linux_sanity_check_passes)
{
	int found = 0;

	for (unsigned devfn = 0; devfn < 256; devfn++) {
		uint32_t x = conf1_read(0, devfn, 0x0a, 2);
		if (x == 0x0600 || x == 0x0300)
			found++;
		else
			ck_assert_uint_eq(x, 0xffff);
	}
	ck_assert_int_eq(found, 1);
}
END_TEST

START_TEST(empty_slots_read_all_ones)
{
	static const unsigned where[][2] = { { 0, 1 }, { 0, 8 }, { 0, 0xff }, { 1, 0 }, { 255, 0 } };

	for (unsigned i = 0; i < 5; i++) {
		ck_assert_uint_eq(conf1_read(where[i][0], where[i][1], 0, 4), 0xffffffffu);
		ck_assert_uint_eq(conf1_read(where[i][0], where[i][1], 0x0e, 1), 0xff);
		conf1_write(where[i][0], where[i][1], 4, 2, 0x0007);
		ck_assert_uint_eq(conf1_read(where[i][0], where[i][1], 4, 2), 0xffff);
	}
	/* Extended registers (AMD bits 27:24) lie beyond 256 bytes. */
	ck_assert_uint_eq(conf1_read(0, 0, 0x100, 4), 0xffffffffu);
	/* Reserved bits 30:28 are ignored. */
	out(CF8, 0xf0000000u, 4);
	ck_assert_uint_eq(in(CFC, 4), 0x0d578086u);
}
END_TEST

START_TEST(disabled_latch_reads_all_ones)
{
	out(CF8, 0x00000000u, 4);
	ck_assert_uint_eq(in(CFC, 4), 0xffffffffu);
	ck_assert_uint_eq(in(CFC + 2, 2), 0xffff);
	ck_assert_uint_eq(in(CFC + 3, 1), 0xff);
	out(CF8, CONF1(0, 0, 4) & ~0x80000000u, 4); /* command, bit 31 clear */
	out(CFC, 0x0007, 2);
	ck_assert_uint_eq(conf1_read(0, 0, 4, 2), 0x0000);
}
END_TEST

START_TEST(read_only_registers_ignore_writes)
{
	for (unsigned reg = 0; reg < 256; reg += 4)
		conf1_write(0, 0, reg, 4, 0xffffffffu);
	for (unsigned reg = 0; reg < 256; reg++) {
		uint8_t want = expected_byte(reg);
		if (reg == 4)
			want = 0x47;       /* command: I/O, mem, master, parity */
		if (reg == 5)
			want = 0x01;       /* command: SERR# */
		ck_assert_uint_eq(conf1_read(0, 0, reg, 1), want);
	}
	conf1_write(0, 0, 4, 2, 0x0000);
	ck_assert_uint_eq(conf1_read(0, 0, 4, 2), 0x0000);
	conf1_write(0, 0, 5, 1, 0xff);
	ck_assert_uint_eq(conf1_read(0, 0, 4, 2), 0x0100);
}
END_TEST

START_TEST(hostile_every_offset_and_size)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	unsigned seed = 99;

	for (int round = 0; round < 2000; round++) {
		uint64_t v = (uint64_t)rand_r(&seed) << 32 | (unsigned)rand_r(&seed);
		unsigned off = (unsigned)rand_r(&seed) % 8;
		unsigned len = sizes[rand_r(&seed) % 4];
		int want = off + len <= 8 ? 0 : -ENOENT;

		ck_assert_int_eq(bus_dispatch(&pio, CF8 + off, &v, len, rand_r(&seed) & 1), want);
	}
	for (unsigned off = 0; off < 8; off++)
		for (unsigned i = 0; i < 4; i++) {
			uint64_t v = ~0ULL;
			int want = off + sizes[i] <= 8 ? 0 : -ENOENT;

			ck_assert_int_eq(bus_dispatch(&pio, CF8 + off, &v, sizes[i], true), want);
			ck_assert_int_eq(bus_dispatch(&pio, CF8 + off, &v, sizes[i], false), want);
		}
	ck_assert_uint_eq(conf1_read(0, 0, 0, 4), 0x0d578086u);
	ck_assert_uint_eq(conf1_read(0, 0, 8, 4), 0x06000000u);
}
END_TEST

/* A plugged function: records accesses into a 256-byte space. */
struct fake_fn {
	uint8_t cfg[256];
	unsigned reads, writes;
	unsigned last_reg, last_len;
};

static void fn_read(void *opaque, unsigned reg, void *data, unsigned len)
{
	struct fake_fn *f = opaque;

	ck_assert_uint_le(reg + len, 256);
	ck_assert_uint_eq(reg / 4, (reg + len - 1) / 4); /* within one dword */
	f->reads++;
	f->last_reg = reg;
	f->last_len = len;
	memcpy(data, f->cfg + reg, len);
}

static void fn_write(void *opaque, unsigned reg, const void *data, unsigned len)
{
	struct fake_fn *f = opaque;

	ck_assert_uint_le(reg + len, 256);
	ck_assert_uint_eq(reg / 4, (reg + len - 1) / 4);
	f->writes++;
	f->last_reg = reg;
	f->last_len = len;
	memcpy(f->cfg + reg, data, len);
}

static const struct pci_dev_ops fn_ops = { .cfg_read = fn_read, .cfg_write = fn_write };

START_TEST(added_functions_get_their_slot_accesses)
{
	static struct fake_fn fns[LAYOUT_PCI_MAX_SLOTS + 1];
	struct kv_err e = { 0 };
	unsigned slot;

	memset(fns, 0, sizeof(fns));
	for (unsigned i = 0; i < LAYOUT_PCI_MAX_SLOTS; i++) {
		fns[i].cfg[0] = (uint8_t)(0x10 + i);
		ck_assert_int_eq(pci_root_add(root, &fn_ops, &fns[i], &slot, &e), 0);
		ck_assert_uint_eq(slot, i + 1);
	}
	slot = 1234;
	ck_assert_int_eq(pci_root_add(root, &fn_ops, &fns[LAYOUT_PCI_MAX_SLOTS], &slot, &e),
			 -ENOSPC);
	ck_assert_int_eq(e.code, -ENOSPC);
	ck_assert_uint_eq(slot, 1234);

	for (unsigned s = 1; s <= LAYOUT_PCI_MAX_SLOTS; s++) {
		struct fake_fn *f = &fns[s - 1];

		ck_assert_uint_eq(conf1_read(0, s << 3, 0, 1), 0x10 + s - 1);
		ck_assert_uint_eq(f->last_reg, 0);
		conf1_write(0, s << 3, 0x3e, 2, 0xbeef);
		ck_assert_uint_eq(f->last_reg, 0x3e);
		ck_assert_uint_eq(f->last_len, 2);
		ck_assert_uint_eq(conf1_read(0, s << 3, 0x3c, 4), 0xbeef0000u);
		ck_assert_uint_eq(conf1_read(0, s << 3, 0xff, 1), 0);
		ck_assert_uint_eq(f->last_reg, 0xff);
		/* Functions 1-7 of the slot, the same slot on bus 1 and extended
		 * registers: nobody. */
		unsigned before = f->reads + f->writes;
		for (unsigned fn = 1; fn < 8; fn++) {
			ck_assert_uint_eq(conf1_read(0, s << 3 | fn, 0, 4), 0xffffffffu);
			conf1_write(0, s << 3 | fn, 0, 4, 0);
		}
		ck_assert_uint_eq(conf1_read(1, s << 3, 0, 4), 0xffffffffu);
		ck_assert_uint_eq(conf1_read(0, s << 3, 0x104, 4), 0xffffffffu);
		conf1_write(0, s << 3, 0x104, 4, 0);
		ck_assert_uint_eq(f->reads + f->writes, before);
	}
	/* Slots past the last one stay empty; the bridge is untouched. */
	for (unsigned s = LAYOUT_PCI_MAX_SLOTS + 1; s < 32; s++)
		ck_assert_uint_eq(conf1_read(0, s << 3, 0, 4), 0xffffffffu);
	ck_assert_uint_eq(conf1_read(0, 0, 0, 4), 0x0d578086u);
}
END_TEST

START_TEST(empty_slots_around_one_device)
{
	static struct fake_fn fn;
	unsigned slot;

	memset(&fn, 0, sizeof(fn));
	ck_assert_int_eq(pci_root_add(root, &fn_ops, &fn, &slot, NULL), 0);
	ck_assert_uint_eq(slot, 1);
	for (unsigned s = 2; s < 32; s++) {
		ck_assert_uint_eq(conf1_read(0, s << 3, 0, 4), 0xffffffffu);
		ck_assert_uint_eq(conf1_read(0, s << 3, 0x0e, 1), 0xff);
	}
	ck_assert_uint_eq(fn.reads + fn.writes, 0);
}
END_TEST

static Suite *pci_suite(void)
{
	Suite *s = suite_create("pci_root");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, latch_readback);
	tcase_add_test(tc, host_bridge_all_offsets_all_sizes);
	tcase_add_test(tc, linux_sanity_check_passes);
	tcase_add_test(tc, empty_slots_read_all_ones);
	tcase_add_test(tc, disabled_latch_reads_all_ones);
	tcase_add_test(tc, read_only_registers_ignore_writes);
	tcase_add_test(tc, hostile_every_offset_and_size);
	tcase_add_test(tc, added_functions_get_their_slot_accesses);
	tcase_add_test(tc, empty_slots_around_one_device);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(pci_suite());
}
