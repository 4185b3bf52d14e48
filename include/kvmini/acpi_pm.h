#ifndef KVMINI_ACPI_PM_H
#define KVMINI_ACPI_PM_H

#include "kvmini/bus.h"
#include "kvmini/err.h"
#include "kvmini/stop.h"

/* ACPI hardware-reduced sleep control/status and reset registers
 * (PORT_ACPI_SLEEP, PORT_ACPI_RESET) as the FADT describes them: writing
 * SLP_EN with SLP_TYP 5 requests STOP_POWEROFF, writing
 * ACPI_RESET_VALUE to the reset register requests STOP_RESET. */
struct acpi_pm;
int acpi_pm_create(struct bus *pio, const struct vm_stopper *stop,
		   struct acpi_pm **out, struct kv_err *e) KV_MUST_CHECK;
/* Unregisters its ports from the bus (never while the vCPUs run: bus.h)
 * and frees it; NULL is a no-op. */
void acpi_pm_destroy(struct acpi_pm *a);

#endif
