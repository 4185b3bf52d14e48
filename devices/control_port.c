/* kvmini's control port: a few one-byte registers through which the
 * guest's init says "userspace is up", "the command started" and "the
 * command exited with N", and the pvpanic port its kernel writes when it
 * panics. The guest is not trusted: a value means
 * something only as a byte write at a defined offset, each event is
 * taken once, and the first exit status is final. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/control_port.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"

struct control_port {
	struct bus *pio;
	pthread_mutex_t lock;
	struct control_port_cfg cfg;
	bool seen[4];          /* by enum control_event */
	uint8_t status;
	struct log_ratelimit rl;
};

static void cp_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
}

/* Decides under the lock which event a write means (or none), so the
 * callback runs outside it. */
static bool decode(struct control_port *c, uint64_t off, uint8_t v, unsigned len,
		   enum control_event *ev)
{
	if (len != 1) {
		LOG_GUEST(&c->rl, "control port: %u-byte write at offset %llu ignored", len,
			  (unsigned long long)off);
		return false;
	}
	switch (off) {
	case CONTROL_REG_EVENT:
		if (v == CONTROL_EV_USERSPACE_UP)
			*ev = CONTROL_USERSPACE_UP;
		else if (v == CONTROL_EV_CMD_STARTED)
			*ev = CONTROL_CMD_STARTED;
		else {
			LOG_GUEST(&c->rl, "control port: unknown event 0x%02x ignored", v);
			return false;
		}
		break;
	case CONTROL_REG_STATUS:
		*ev = CONTROL_CMD_DONE;
		break;
	default:
		LOG_GUEST(&c->rl, "control port: write 0x%02x at offset %llu ignored", v,
			  (unsigned long long)off);
		return false;
	}
	if (c->seen[*ev]) {
		LOG_GUEST(&c->rl, "control port: repeated %s ignored",
			  *ev == CONTROL_CMD_DONE ? "exit status" : "event");
		return false;
	}
	c->seen[*ev] = true;
	if (*ev == CONTROL_CMD_DONE)
		c->status = v;
	return true;
}

static void cp_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct control_port *c = opaque;
	uint8_t v = *(const uint8_t *)data;
	enum control_event ev = CONTROL_USERSPACE_UP;
	bool fire;

	pthread_mutex_lock(&c->lock);
	fire = decode(c, off, v, len, &ev);
	pthread_mutex_unlock(&c->lock);
	if (fire && c->cfg.on_event)
		c->cfg.on_event(c->cfg.ctx, ev, v);
}

static const struct bus_ops cp_ops = { .read = cp_read, .write = cp_write };

static void pvpanic_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
	*(uint8_t *)data = PVPANIC_PANICKED; /* the only event kvmini acts on */
}

static void pvpanic_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct control_port *c = opaque;
	uint8_t v = *(const uint8_t *)data;
	bool fire = false;

	/* Bit 1 (crash kernel loaded) and anything else mean nothing here. */
	if (!(v & PVPANIC_PANICKED))
		return;
	pthread_mutex_lock(&c->lock);
	if (!c->seen[CONTROL_GUEST_PANIC])
		fire = c->seen[CONTROL_GUEST_PANIC] = true;
	pthread_mutex_unlock(&c->lock);
	if (fire && c->cfg.on_event)
		c->cfg.on_event(c->cfg.ctx, CONTROL_GUEST_PANIC, 0);
}

static const struct bus_ops pvpanic_ops = { .read = pvpanic_read, .write = pvpanic_write };

int control_port_create(struct bus *pio, const struct control_port_cfg *cfg,
			struct control_port **out, struct kv_err *e)
{
	struct control_port *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return kv_err_set(e, -ENOMEM, "control port: out of memory");
	r = pthread_mutex_init(&c->lock, NULL);
	if (r) {
		free(c);
		return kv_err_set(e, -r, "control port: mutex: %s", strerror(r));
	}
	if (cfg)
		c->cfg = *cfg;
	c->pio = pio;
	const struct bus_range ports[] = {
		{ PORT_CONTROL, PORT_CONTROL_LEN, &cp_ops, c, "kvmini control" },
		{ PORT_PVPANIC, 1, &pvpanic_ops, c, "pvpanic" },
	};
	r = bus_register_ranges(pio, ports, 2, e);
	if (r) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

void control_port_destroy(struct control_port *c)
{
	if (!c)
		return;
	bus_unregister_all(c->pio, c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

bool control_port_status(struct control_port *c, int *status)
{
	bool done;

	pthread_mutex_lock(&c->lock);
	done = c->seen[CONTROL_CMD_DONE];
	*status = c->status;
	pthread_mutex_unlock(&c->lock);
	return done;
}
