#ifndef KVMINI_LEGACY_MISC_H
#define KVMINI_LEGACY_MISC_H

#include "kvmini/bus.h"
#include "kvmini/err.h"

/* Ports a stock kernel pokes at boot that need only be swallowed:
 * 0x80 (POST/delay), 0xed, PIC ELCR 0x4d0-0x4d1 if not in-kernel, etc. */
struct legacy_misc;
int legacy_misc_create(struct bus *pio, struct legacy_misc **out, struct kv_err *e) KV_MUST_CHECK;
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void legacy_misc_destroy(struct legacy_misc *m);

#endif
