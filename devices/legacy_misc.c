/* Ports a stock kernel pokes that need only be swallowed, so they neither
 * show up as unclaimed accesses nor cost a log line:
 *   0x80  POST code; Linux's default I/O delay writes it after every
 *         outb_p/inb_p (RTC, early boot) until paravirt turns it off.
 *   0xed  the alternative delay port (io_delay=0xed, some DMI quirks).
 * Reads return 0xff, what an ISA port with no latch behind it shows.
 *
 * Not here, because KVM_CREATE_IRQCHIP and KVM_CREATE_PIT2 emulate them
 * in the kernel and the exits never reach us: PIC 0x20-0x21/0xa0-0xa1,
 * ELCR 0x4d0-0x4d1, PIT 0x40-0x43, and port 0x61 when the PIT is created
 * with KVM_PIT_SPEAKER_DUMMY. The DMA page register Linux reads once
 * (0x87, i8237A_init_ops) must stay unclaimed: 0xff there means "no
 * DMA controller". */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/legacy_misc.h"
#include "kvmini/layout.h"

#define PORT_DELAY_ALT 0xed

struct legacy_misc {
	struct bus *pio;
	pthread_mutex_t lock;
	uint8_t post_code; /* last POST code, kept for debugging */
};

static void misc_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0xff, len);
}

static void post_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct legacy_misc *m = opaque;

	pthread_mutex_lock(&m->lock);
	m->post_code = *(const uint8_t *)data;
	pthread_mutex_unlock(&m->lock);
}

static void delay_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
}

static const struct bus_ops post_ops = { .read = misc_read, .write = post_write };
static const struct bus_ops delay_ops = { .read = misc_read, .write = delay_write };

int legacy_misc_create(struct bus *pio, struct legacy_misc **out, struct kv_err *e)
{
	struct legacy_misc *m;
	int ret;

	m = calloc(1, sizeof(*m));
	if (!m)
		return kv_err_set(e, -ENOMEM, "legacy_misc: out of memory");
	ret = pthread_mutex_init(&m->lock, NULL);
	if (ret) {
		free(m);
		return kv_err_set(e, -ret, "legacy_misc: mutex: %s", strerror(ret));
	}
	m->pio = pio;
	const struct bus_range ports[] = {
		{ PORT_POST, 1, &post_ops, m, "POST code" },
		{ PORT_DELAY_ALT, 1, &delay_ops, m, "I/O delay" },
	};
	ret = bus_register_ranges(pio, ports, 2, e);
	if (ret) {
		pthread_mutex_destroy(&m->lock);
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void legacy_misc_destroy(struct legacy_misc *m)
{
	if (!m)
		return;
	bus_unregister_all(m->pio, m);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
