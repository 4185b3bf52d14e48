/* i8042 keyboard controller with nothing plugged in: enough for Linux's
 * probe (flush, self test, CTR read/write, AUX loop and bit tests) to
 * answer at once, and for its reset line (0xfe) to stop the VM.
 *
 * No interrupt lines are wired (i8042_create has no irq_sink), so Linux's
 * AUX IRQ test sees no IRQ 12, waits its 250 ms and decides there is no
 * AUX port; the keyboard port is registered and atkbd's probe, which
 * runs asynchronously, times out without a keyboard. Bytes sent to the
 * missing devices vanish: the output buffer only ever holds replies to
 * controller commands, so a stale byte can never pose as a reply.
 *
 * Port 0x61 (system control port B) is not ours: KVM's in-kernel PIT
 * emulates it (arch/x86/kvm/i8254.c, speaker_ioport_read/write) when the
 * VMM passes KVM_PIT_SPEAKER_DUMMY to KVM_CREATE_PIT2. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/i8042.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"

/* Status register (read from 0x64). */
#define STR_OBF      0x01 /* output buffer full */
#define STR_SYSFLAG  0x04 /* mirrors CTR bit 2 */
#define STR_CMD      0x08 /* last write went to 0x64 */
#define STR_UNLOCKED 0x10 /* keylock off; Linux warns otherwise */
#define STR_AUXDATA  0x20 /* the output byte came from the AUX port */

/* Controller configuration byte (CTR, internal RAM byte 0). */
#define CTR_SYSFLAG  0x04
#define CTR_KBDDIS   0x10
#define CTR_AUXDIS   0x20
/* As a BIOS leaves it: keyboard IRQ on, system flag, AUX off, translation. */
#define CTR_DEFAULT  0x65

/* Output port: bit 0 drives the CPU reset line (active low), bit 1 A20. */
#define OUTP_RESET   0x01
#define OUTP_DEFAULT 0x03

struct i8042 {
	struct bus *pio;
	pthread_mutex_t lock;
	struct vm_stopper stop;
	uint8_t ram[32];       /* ram[0] is the CTR */
	uint8_t outbuf;
	bool outbuf_full, outbuf_aux;
	uint8_t pending;       /* command waiting for its data byte, 0: none */
	uint8_t outport;
	bool last_was_cmd;
	struct log_ratelimit rl;
};

static void reply(struct i8042 *k, uint8_t v, bool aux)
{
	k->outbuf = v;
	k->outbuf_full = true;
	k->outbuf_aux = aux;
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t st = STR_UNLOCKED | (k->ram[0] & CTR_SYSFLAG);

	if (k->outbuf_full)
		st |= STR_OBF | (k->outbuf_aux ? STR_AUXDATA : 0);
	if (k->last_was_cmd)
		st |= STR_CMD;
	return st; /* IBF never set: input is consumed at once */
}

/* Returns true when the guest asked for a CPU reset. */
static bool command(struct i8042 *k, uint8_t cmd)
{
	k->pending = 0; /* a new command abandons one still waiting for data */
	if (cmd >= 0x20 && cmd <= 0x3f) {        /* read internal RAM */
		reply(k, k->ram[cmd & 0x1f], false);
		return false;
	}
	if (cmd >= 0x60 && cmd <= 0x7f) {        /* write internal RAM */
		k->pending = cmd;
		return false;
	}
	if (cmd >= 0xf0)                        /* pulse output lines low */
		return !(cmd & OUTP_RESET);
	switch (cmd) {
	case 0xa7: k->ram[0] |= CTR_AUXDIS; break;
	case 0xa8: k->ram[0] &= (uint8_t)~CTR_AUXDIS; break;
	case 0xa9: reply(k, 0x00, false); break; /* AUX interface test: ok */
	case 0xaa: reply(k, 0x55, false); break; /* controller self test: ok */
	case 0xab: reply(k, 0x00, false); break; /* keyboard interface test: ok */
	case 0xad: k->ram[0] |= CTR_KBDDIS; break;
	case 0xae: k->ram[0] &= (uint8_t)~CTR_KBDDIS; break;
	case 0xd0: reply(k, k->outport, false); break;
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write AUX output buffer (Linux's AUX loop test) */
	case 0xd4: /* write to AUX device */
		k->pending = cmd;
		break;
	default:
		LOG_GUEST(&k->rl, "i8042: unknown command 0x%02x ignored", cmd);
		break;
	}
	return false;
}

/* Returns true when the guest asked for a CPU reset. */
static bool data(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->ram[cmd & 0x1f] = v;
		return false;
	}
	switch (cmd) {
	case 0xd1:
		k->outport = v;
		return !(v & OUTP_RESET);
	case 0xd2:
		reply(k, v, false);
		break;
	case 0xd3:
		reply(k, v, true);
		break;
	default:
		/* 0xd4 or no command: a byte for a device that is not there. */
		break;
	}
	return false;
}

static void i8042_read_data(void *opaque, uint64_t off, void *buf, unsigned len)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	memset(buf, k->outbuf, len); /* an empty buffer shows its last byte */
	k->outbuf_full = false;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write_data(void *opaque, uint64_t off, const void *buf, unsigned len)
{
	struct i8042 *k = opaque;
	bool reset;

	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = false;
	reset = data(k, *(const uint8_t *)buf);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_stopper_request(&k->stop, STOP_RESET);
}

static void i8042_read_status(void *opaque, uint64_t off, void *buf, unsigned len)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	memset(buf, status(k), len);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_write_cmd(void *opaque, uint64_t off, const void *buf, unsigned len)
{
	struct i8042 *k = opaque;
	bool reset;

	pthread_mutex_lock(&k->lock);
	k->last_was_cmd = true;
	reset = command(k, *(const uint8_t *)buf);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: stopping the VM may wait for this vCPU's peers.
	 * Linux pulses the line up to ten times; each one asks again. */
	if (reset)
		vm_stopper_request(&k->stop, STOP_RESET);
}

static const struct bus_ops data_ops = { .read = i8042_read_data, .write = i8042_write_data };
static const struct bus_ops cmd_ops = { .read = i8042_read_status, .write = i8042_write_cmd };

int i8042_create(struct bus *pio, const struct vm_stopper *stop,
		 struct i8042 **out, struct kv_err *e)
{
	struct i8042 *k;
	int ret;

	k = calloc(1, sizeof(*k));
	if (!k)
		return kv_err_set(e, -ENOMEM, "i8042: out of memory");
	ret = pthread_mutex_init(&k->lock, NULL);
	if (ret) {
		free(k);
		return kv_err_set(e, -ret, "i8042: mutex: %s", strerror(ret));
	}
	if (stop)
		k->stop = *stop;
	k->pio = pio;
	k->ram[0] = CTR_DEFAULT;
	k->outport = OUTP_DEFAULT;
	/* One byte each: a wider access straddles into ports that are not
	 * ours and the bus answers it as unclaimed. */
	const struct bus_range ports[] = {
		{ PORT_I8042_DATA, 1, &data_ops, k, "i8042 data" },
		{ PORT_I8042_CMD, 1, &cmd_ops, k, "i8042 command" },
	};
	ret = bus_register_ranges(pio, ports, 2, e);
	if (ret) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return ret;
	}
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	bus_unregister_all(k->pio, k);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
