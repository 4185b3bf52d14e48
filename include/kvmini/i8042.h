#ifndef KVMINI_I8042_H
#define KVMINI_I8042_H

#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/stop.h"

/* i8042 keyboard controller: enough for Linux's probe and the reset line
 * (command 0xfe on port 0x64 asks the VM to stop with STOP_RESET). */
struct i8042;
int i8042_create(struct bus *pio, const struct vm_stopper *stop,
		 struct i8042 **out, struct kv_err *e) KV_MUST_CHECK;
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void i8042_destroy(struct i8042 *k);

#endif
