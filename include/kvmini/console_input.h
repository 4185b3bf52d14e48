/* Where keyboard input for the guest goes: the VM hands the terminal one
 * of these (the serial port, or hvc0), so the terminal knows no device. */
#ifndef KVMINI_CONSOLE_INPUT_H
#define KVMINI_CONSOLE_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console_input {
	/* True when input sent now would reach a driver that has opened the
	 * port (bytes sent earlier would be thrown away by its probe). */
	bool (*ready)(void *ctx);
	/* Takes up to @n bytes; returns how many were taken (0: full). */
	size_t (*receive)(void *ctx, const uint8_t *buf, size_t n);
	void *ctx;
};

#endif
