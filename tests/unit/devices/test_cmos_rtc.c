/* cmos_rtc: the clock against the host's, NVRAM, index masking and the
 * BIOS memory-size bytes. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvmini/cmos_rtc.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "fakes.h"

static struct bus pio;
static struct cmos_rtc *rtc;

static void setup(void)
{
	struct kv_err e = { 0 };

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(cmos_rtc_create(&pio, 512 * MiB, &rtc, &e), 0);
}

static void teardown(void)
{
	cmos_rtc_destroy(rtc);
	bus_destroy(&pio);
}

/* Index, then data, as the guest does it. */
static uint8_t cmos_read_on(struct bus *b, uint8_t idx)
{
	pio_outb(b, PORT_RTC, idx);
	return pio_inb(b, PORT_RTC + 1);
}

static uint8_t cmos_read(uint8_t idx)
{
	return cmos_read_on(&pio, idx);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	pio_outb(&pio, PORT_RTC, idx);
	pio_outb(&pio, PORT_RTC + 1, v);
}

static unsigned from_bcd(uint8_t v)
{
	ck_assert_uint_le(v & 0x0f, 9);
	ck_assert_uint_le(v >> 4, 9);
	return (v >> 4) * 10 + (v & 0x0f);
}

struct rtc_time {
	unsigned sec, min, hour, wday, mday, mon, year;
};

static void read_rtc(struct rtc_time *t)
{
	t->sec = from_bcd(cmos_read(0x00));
	t->min = from_bcd(cmos_read(0x02));
	t->hour = from_bcd(cmos_read(0x04));
	t->wday = from_bcd(cmos_read(0x06));
	t->mday = from_bcd(cmos_read(0x07));
	t->mon = from_bcd(cmos_read(0x08));
	t->year = from_bcd(cmos_read(0x32)) * 100 + from_bcd(cmos_read(0x09));
}

static int same_as(const struct rtc_time *t, time_t when)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	return t->sec == (unsigned)tm.tm_sec && t->min == (unsigned)tm.tm_min &&
	       t->hour == (unsigned)tm.tm_hour && t->wday == (unsigned)tm.tm_wday + 1 &&
	       t->mday == (unsigned)tm.tm_mday && t->mon == (unsigned)tm.tm_mon + 1 &&
	       t->year == (unsigned)tm.tm_year + 1900;
}

START_TEST(bcd_time_matches_host_utc)
{
	struct rtc_time t;
	time_t before, after;
	int tries = 0;

	/* The registers are read one by one: a read that straddles a second
	 * boundary (or, on a loaded machine, several) proves nothing. Retry
	 * until one falls inside a single second, then it must match it. */
	do {
		before = time(NULL);
		read_rtc(&t);
		after = time(NULL);
	} while (before != after && ++tries < 20);
	ck_assert_msg(before == after, "no RTC read fitted in one second in 20 tries");
	ck_assert(same_as(&t, before));
}
END_TEST

START_TEST(status_registers)
{
	uint8_t b = cmos_read(0x0b);

	ck_assert_uint_eq(b & 0x06, 0x02);          /* BCD, 24 hours */
	ck_assert_uint_eq(cmos_read(0x0a) & 0x7f, 0x26);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);   /* valid RAM and time */
	ck_assert_uint_eq(cmos_read(0x0c), 0x00);
	/* The guest cannot switch to binary or 12-hour mode... */
	cmos_write(0x0b, 0x04 | 0x40);
	ck_assert_uint_eq(cmos_read(0x0b), 0x42);
	/* ...nor set UIP, nor write C and D. */
	cmos_write(0x0a, 0xff);
	ck_assert_uint_eq(cmos_read(0x0a) & 0x7f, 0x7f);
	cmos_write(0x0c, 0xff);
	cmos_write(0x0d, 0x00);
	ck_assert_uint_eq(cmos_read(0x0c), 0x00);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);
}
END_TEST

START_TEST(uip_is_never_stuck)
{
	struct timespec t0, t;
	int clear = 0;

	/* UIP only shows in the 244 us before each second: polling for a
	 * little over a second must see it clear many times. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		clear += !(cmos_read(0x0a) & 0x80);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (clear < 1000 && t.tv_sec - t0.tv_sec < 2);
	ck_assert_int_ge(clear, 1000);
}
END_TEST

START_TEST(clock_writes_are_ignored)
{
	struct rtc_time t;
	time_t now;

	for (uint8_t idx = 0; idx <= 9; idx += 1)
		if (idx != 1 && idx != 3 && idx != 5)
			cmos_write(idx, 0x00);
	cmos_write(0x32, 0x19);
	now = time(NULL);
	read_rtc(&t);
	ck_assert_uint_ge(t.year, 2000);
	ck_assert(same_as(&t, now) || same_as(&t, time(NULL)) || same_as(&t, now + 1));
}
END_TEST

START_TEST(nvram_round_trip)
{
	/* Alarm bytes and every byte past the status registers, except the
	 * century, keep what the guest writes. */
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned idx = 0; idx < 128; idx++) {
			if (idx <= 0x0d && idx != 1 && idx != 3 && idx != 5)
				continue;
			if (idx == 0x32)
				continue;
			cmos_write((uint8_t)idx, (uint8_t)(idx * 7 + pass));
		}
		for (unsigned idx = 0; idx < 128; idx++) {
			if (idx <= 0x0d && idx != 1 && idx != 3 && idx != 5)
				continue;
			if (idx == 0x32)
				continue;
			ck_assert_uint_eq(cmos_read((uint8_t)idx), (uint8_t)(idx * 7 + pass));
		}
	}
}
END_TEST

START_TEST(index_masks_nmi_bit)
{
	cmos_write(0x20, 0xa5);
	ck_assert_uint_eq(cmos_read(0x80 | 0x20), 0xa5);
	cmos_write(0xff, 0x5a);            /* index 0x7f */
	ck_assert_uint_eq(cmos_read(0x7f), 0x5a);
	uint8_t v;
	ck_assert_int_eq(bus_dispatch(&pio, PORT_RTC, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0xff);        /* index port is write-only */
}
END_TEST

START_TEST(memory_size_bytes)
{
	/* 512 MiB: extended memory saturates at 0xffff KiB; above 16 MiB
	 * is 496 MiB = 7936 blocks of 64 KiB; nothing above 4 GiB. */
	ck_assert_uint_eq(cmos_read(0x15) | cmos_read(0x16) << 8, 640);
	ck_assert_uint_eq(cmos_read(0x17) | cmos_read(0x18) << 8, 0xffff);
	ck_assert_uint_eq(cmos_read(0x30) | cmos_read(0x31) << 8, 0xffff);
	ck_assert_uint_eq(cmos_read(0x34) | cmos_read(0x35) << 8, 7936);
	ck_assert_uint_eq(cmos_read(0x5b) | cmos_read(0x5c) << 8 | cmos_read(0x5d) << 16, 0);
}
END_TEST

START_TEST(memory_size_bytes_large_and_small)
{
	struct bus b;
	struct cmos_rtc *r;

	/* 8 GiB: 3 GiB below the hole, 5 GiB above 4 GiB. */
	bus_init(&b, BUS_PIO);
	ck_assert_int_eq(cmos_rtc_create(&b, 8 * GiB, &r, NULL), 0);
	ck_assert_uint_eq(cmos_read_on(&b, 0x5b) | cmos_read_on(&b, 0x5c) << 8 |
			  cmos_read_on(&b, 0x5d) << 16, 5 * GiB / (64 * KiB));
	ck_assert_uint_eq(cmos_read_on(&b, 0x34) | cmos_read_on(&b, 0x35) << 8,
			  (3 * GiB - 16 * MiB) / (64 * KiB));
	cmos_rtc_destroy(r);
	bus_destroy(&b);

	/* 8 MiB: 7 MiB extended, nothing above 16 MiB. */
	bus_init(&b, BUS_PIO);
	ck_assert_int_eq(cmos_rtc_create(&b, 8 * MiB, &r, NULL), 0);
	ck_assert_uint_eq(cmos_read_on(&b, 0x17) | cmos_read_on(&b, 0x18) << 8, 7 * 1024);
	ck_assert_uint_eq(cmos_read_on(&b, 0x34), 0);
	cmos_rtc_destroy(r);
	bus_destroy(&b);
}
END_TEST

START_TEST(odd_access_sizes)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	uint64_t v;

	for (unsigned off = 0; off < 2; off++) {
		for (unsigned i = 0; i < 4; i++) {
			int want = off + sizes[i] <= 2 ? 0 : -ENOENT;

			v = 0x4e4e4e4e4e4e4e4eULL;
			ck_assert_int_eq(bus_dispatch(&pio, PORT_RTC + off, &v, sizes[i], true), want);
			ck_assert_int_eq(bus_dispatch(&pio, PORT_RTC + off, &v, sizes[i], false), want);
		}
	}
	/* A word write is an index then a data byte, as on the ISA bus. */
	uint16_t w = 0x7740;
	ck_assert_int_eq(bus_dispatch(&pio, PORT_RTC, &w, 2, true), 0);
	ck_assert_uint_eq(cmos_read(0x40), 0x77);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);
	ck_assert_uint_eq(cmos_read(0x0b) & 0x06, 0x02);
}
END_TEST

START_TEST(hostile_storm)
{
	unsigned seed = 7;

	for (int i = 0; i < 100000; i++) {
		uint8_t v = (uint8_t)rand_r(&seed);
		unsigned off = (unsigned)rand_r(&seed) & 1;

		bus_dispatch(&pio, PORT_RTC + off, &v, 1, rand_r(&seed) & 1);
	}
	ck_assert_uint_eq(cmos_read(0x0b) & 0x06, 0x02);
	ck_assert_uint_eq(cmos_read(0x0d), 0x80);
	ck_assert_uint_le(from_bcd(cmos_read(0x00)), 59);
}
END_TEST

static Suite *rtc_suite(void)
{
	Suite *s = suite_create("cmos_rtc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, bcd_time_matches_host_utc);
	tcase_add_test(tc, status_registers);
	tcase_add_test(tc, uip_is_never_stuck);
	tcase_add_test(tc, clock_writes_are_ignored);
	tcase_add_test(tc, nvram_round_trip);
	tcase_add_test(tc, index_masks_nmi_bit);
	tcase_add_test(tc, memory_size_bytes);
	tcase_add_test(tc, memory_size_bytes_large_and_small);
	tcase_add_test(tc, odd_access_sizes);
	tcase_add_test(tc, hostile_storm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(rtc_suite());
}
