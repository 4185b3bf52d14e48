/* MC146818 CMOS RTC at 0x70 (index, bit 7 = NMI mask) and 0x71 (data).
 * The clock registers show the host's UTC time, read at each access, in
 * BCD and 24-hour mode; the rest is 128 bytes of NVRAM, pre-filled with
 * the memory sizes a PC BIOS reports. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvmini/cmos_rtc.h"
#include "kvmini/layout.h"

#define RTC_SECONDS   0x00
#define RTC_MINUTES   0x02
#define RTC_HOURS     0x04
#define RTC_WEEKDAY   0x06
#define RTC_DAY       0x07
#define RTC_MONTH     0x08
#define RTC_YEAR      0x09
#define RTC_REG_A     0x0a
#define RTC_REG_B     0x0b
#define RTC_REG_C     0x0c
#define RTC_REG_D     0x0d
#define RTC_CENTURY   0x32 /* where ACPI's FADT century field points, by convention */

#define REG_A_UIP     0x80
#define REG_A_DEFAULT 0x26 /* 32.768 kHz time base, 1024 Hz periodic rate */
#define REG_B_DM_BIN  0x04
#define REG_B_24H     0x02
#define REG_D_VRT     0x80 /* valid RAM and time */

/* UIP rises 244 us before each update on the real chip. Showing it in
 * that window (and never longer) lets a guest that only checks UIP avoid
 * reading across a second boundary; Linux also re-reads the seconds. */
#define UIP_WINDOW_NS 244000L

struct cmos_rtc {
	struct bus *pio;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t nvram[128];
};

static uint8_t bcd(unsigned v)
{
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static bool is_clock_reg(uint8_t idx)
{
	return idx == RTC_SECONDS || idx == RTC_MINUTES || idx == RTC_HOURS ||
	       (idx >= RTC_WEEKDAY && idx <= RTC_YEAR) || idx == RTC_CENTURY;
}

static uint8_t uip_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_nsec >= 1000000000L - UIP_WINDOW_NS ? REG_A_UIP : 0;
}

static uint8_t clock_reg(uint8_t idx)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	switch (idx) {
	case RTC_SECONDS: return bcd((unsigned)tm.tm_sec);
	case RTC_MINUTES: return bcd((unsigned)tm.tm_min);
	case RTC_HOURS:   return bcd((unsigned)tm.tm_hour);
	case RTC_WEEKDAY: return bcd((unsigned)tm.tm_wday + 1); /* Sunday = 1 */
	case RTC_DAY:     return bcd((unsigned)tm.tm_mday);
	case RTC_MONTH:   return bcd((unsigned)tm.tm_mon + 1);
	case RTC_YEAR:    return bcd((unsigned)(tm.tm_year + 1900) % 100);
	default:          return bcd((unsigned)(tm.tm_year + 1900) / 100);
	}
}

static uint8_t rtc_reg_read(struct cmos_rtc *r, uint8_t idx)
{
	if (is_clock_reg(idx))
		return clock_reg(idx);
	switch (idx) {
	case RTC_REG_A:
		return (uint8_t)((r->nvram[RTC_REG_A] & ~REG_A_UIP) | uip_now());
	case RTC_REG_C:
		return 0; /* no interrupt flags: no IRQ 8 is wired */
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return r->nvram[idx];
	}
}

static void rtc_reg_write(struct cmos_rtc *r, uint8_t idx, uint8_t v)
{
	/* The host's clock is authoritative: a guest setting the time
	 * (hwclock --systohc) is not an error, it simply does not stick. */
	if (is_clock_reg(idx) || idx == RTC_REG_C || idx == RTC_REG_D)
		return;
	if (idx == RTC_REG_A)
		v &= (uint8_t)~REG_A_UIP;
	/* Data mode and hour format stay BCD/24h whatever the guest asks:
	 * the clock registers are produced that way, and Linux reads B to
	 * learn the format before it decodes them. */
	if (idx == RTC_REG_B)
		v = (uint8_t)((v & ~REG_B_DM_BIN) | REG_B_24H);
	r->nvram[idx] = v;
}

static void rtc_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct cmos_rtc *r = opaque;
	uint8_t *p = data;

	pthread_mutex_lock(&r->lock);
	/* Byte registers; a wider access is split as on the ISA bus. */
	for (unsigned i = 0; i < len; i++)
		p[i] = off + i == 0 ? 0xff /* index port: write-only */
				    : rtc_reg_read(r, r->index);
	pthread_mutex_unlock(&r->lock);
}

static void rtc_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct cmos_rtc *r = opaque;
	const uint8_t *p = data;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < len; i++) {
		if (off + i == 0)
			r->index = p[i] & 0x7f; /* bit 7 masks NMIs; nothing to mask here */
		else
			rtc_reg_write(r, r->index, p[i]);
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct bus_ops rtc_ops = { .read = rtc_read, .write = rtc_write };

static void put16(uint8_t *p, uint64_t v)
{
	if (v > 0xffff)
		v = 0xffff;
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* The memory-size bytes SeaBIOS and QEMU keep in CMOS. Linux ignores
 * them (it has the e820 map), but they are what a PC shows. */
static void set_memory_sizes(uint8_t *nv, uint64_t ram_size)
{
	uint64_t low = ram_size < LAYOUT_MMIO_HOLE_START ? ram_size : LAYOUT_MMIO_HOLE_START;
	uint64_t high = (ram_size - low) / (64 * KiB);

	put16(&nv[0x15], 640);                                        /* base memory, KiB */
	put16(&nv[0x17], low > MiB ? (low - MiB) / KiB : 0);          /* above 1 MiB, KiB */
	put16(&nv[0x30], low > MiB ? (low - MiB) / KiB : 0);          /* same, POST copy */
	put16(&nv[0x34], low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0); /* above 16 MiB */
	if (high > 0xffffff)
		high = 0xffffff;
	nv[0x5b] = (uint8_t)high;                                     /* above 4 GiB, 64 KiB units */
	nv[0x5c] = (uint8_t)(high >> 8);
	nv[0x5d] = (uint8_t)(high >> 16);
}

int cmos_rtc_create(struct bus *pio, uint64_t ram_size, struct cmos_rtc **out,
		    struct kv_err *e)
{
	struct cmos_rtc *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return kv_err_set(e, -ENOMEM, "cmos_rtc: out of memory");
	ret = pthread_mutex_init(&r->lock, NULL);
	if (ret) {
		free(r);
		return kv_err_set(e, -ret, "cmos_rtc: mutex: %s", strerror(ret));
	}
	r->pio = pio;
	r->nvram[RTC_REG_A] = REG_A_DEFAULT;
	r->nvram[RTC_REG_B] = REG_B_24H;
	set_memory_sizes(r->nvram, ram_size);
	ret = bus_register(pio, PORT_RTC, 2, &rtc_ops, r, "cmos_rtc", e);
	if (ret) {
		pthread_mutex_destroy(&r->lock);
		free(r);
		return ret;
	}
	*out = r;
	return 0;
}

void cmos_rtc_destroy(struct cmos_rtc *r)
{
	if (!r)
		return;
	bus_unregister_all(r->pio, r);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
