#ifndef KVMINI_CMOS_RTC_H
#define KVMINI_CMOS_RTC_H

#include <stdint.h>
#include "kvmini/bus.h"
#include "kvmini/err.h"

/* CMOS RTC at 0x70/0x71: the host's UTC time in BCD, update-in-progress
 * never stuck, so the kernel's RTC probe returns at once. */
struct cmos_rtc;
int cmos_rtc_create(struct bus *pio, uint64_t ram_size, struct cmos_rtc **out,
		    struct kv_err *e) KV_MUST_CHECK;
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void cmos_rtc_destroy(struct cmos_rtc *r);

#endif
