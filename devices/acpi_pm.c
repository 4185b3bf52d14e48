/* ACPI hardware-reduced sleep registers and reset register, at the ports
 * the FADT's SLEEP_CONTROL_REG, SLEEP_STATUS_REG and RESET_REG name.
 *
 * How Linux uses them (ACPICA, drivers/acpi/acpica/hwesleep.c,
 * acpi_hw_extended_sleep, with ACPI_X_* from include/acpi/actbl.h):
 *   1. it writes ACPI_X_WAKE_STATUS (0x80) to SLEEP_STATUS_REG to clear
 *      WAK_STS;
 *   2. it writes ((sleep_type_a << ACPI_X_SLEEP_TYPE_POSITION (2)) &
 *      ACPI_X_SLEEP_TYPE_MASK (0x1c)) | ACPI_X_SLEEP_ENABLE (0x20) to
 *      SLEEP_CONTROL_REG, one byte, where sleep_type_a is the first value
 *      of the DSDT's \_Sx package;
 *   3. it spins reading SLEEP_STATUS_REG until WAK_STS is set.
 * Our \_S5 package says 5, so poweroff is the byte 0x34. After a wake
 * acpi_hw_extended_wake_prep writes SLP_EN with \_S0's type (0 here),
 * which must do nothing. WAK_STS never rises: the VM does not come back.
 *
 * Reset (acpi_reset, drivers/acpi/acpica/hwxface.c): for a SystemIO reset
 * register Linux writes the FADT's reset value with an 8-bit outb. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/acpi_pm.h"
#include "kvmini/layout.h"
#include "kvmini/log.h"

#define SLP_TYP_MASK  0x1c
#define SLP_TYP_SHIFT 2
#define SLP_EN        0x20
#define SLP_TYP_S5    5

struct acpi_pm {
	struct bus *pio;
	pthread_mutex_t lock;
	struct vm_stopper stop;
	uint8_t control;      /* SLP_TYP as last written; SLP_EN reads 0 */
	struct log_ratelimit rl;
};

static void request(struct acpi_pm *a, enum vm_stop_cause why)
{
	/* Called without the lock: stopping may wait for other vCPUs. */
	vm_stopper_request(&a->stop, why);
}

static void sleep_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct acpi_pm *a = opaque;
	uint8_t *p = data;

	pthread_mutex_lock(&a->lock);
	/* Byte registers; a word access reads both. Status bits are never
	 * set, so SLEEP_STATUS_REG reads 0. */
	for (unsigned i = 0; i < len; i++)
		p[i] = off + i == 0 ? a->control : 0;
	pthread_mutex_unlock(&a->lock);
}

static void sleep_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *a = opaque;
	uint8_t v = *(const uint8_t *)data;
	unsigned typ;
	bool poweroff = false;

	/* Only the control byte at offset 0 does anything: writes to the
	 * status register clear bits that are never set. */
	if (off != 0)
		return;
	pthread_mutex_lock(&a->lock);
	a->control = v & SLP_TYP_MASK;
	typ = (v & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
	if ((v & SLP_EN) && typ == SLP_TYP_S5)
		poweroff = true;
	else if ((v & SLP_EN) && typ != 0)
		LOG_GUEST(&a->rl, "acpi_pm: sleep type %u not supported, ignored", typ);
	pthread_mutex_unlock(&a->lock);
	if (poweroff)
		request(a, STOP_POWEROFF);
}

static void reset_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0, len);
}

static void reset_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct acpi_pm *a = opaque;
	uint8_t v = *(const uint8_t *)data;

	if (v == ACPI_RESET_VALUE) {
		request(a, STOP_RESET);
		return;
	}
	pthread_mutex_lock(&a->lock);
	LOG_GUEST(&a->rl, "acpi_pm: reset register write 0x%02x ignored (reset value is 0x%02x)",
		  v, ACPI_RESET_VALUE);
	pthread_mutex_unlock(&a->lock);
}

static const struct bus_ops sleep_ops = { .read = sleep_read, .write = sleep_write };
static const struct bus_ops reset_ops = { .read = reset_read, .write = reset_write };

int acpi_pm_create(struct bus *pio, const struct vm_stopper *stop,
		   struct acpi_pm **out, struct kv_err *e)
{
	struct acpi_pm *a;
	int ret;

	a = calloc(1, sizeof(*a));
	if (!a)
		return kv_err_set(e, -ENOMEM, "acpi_pm: out of memory");
	ret = pthread_mutex_init(&a->lock, NULL);
	if (ret) {
		free(a);
		return kv_err_set(e, -ret, "acpi_pm: mutex: %s", strerror(ret));
	}
	if (stop)
		a->stop = *stop;
	a->pio = pio;
	const struct bus_range ports[] = {
		{ PORT_ACPI_SLEEP, 2, &sleep_ops, a, "ACPI sleep" },
		{ PORT_ACPI_RESET, 1, &reset_ops, a, "ACPI reset" },
	};
	ret = bus_register_ranges(pio, ports, 2, e);
	if (ret) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *a)
{
	if (!a)
		return;
	bus_unregister_all(a->pio, a);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
