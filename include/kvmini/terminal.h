/* The console on kvmini's own stdin/stdout: raw mode for a TTY (restored
 * on every exit path), the Ctrl-A escape, and feeding input to the guest
 * UART only as fast as the guest drains it. */
#ifndef KVMINI_TERMINAL_H
#define KVMINI_TERMINAL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvmini/console_input.h"
#include "kvmini/err.h"
#include "kvmini/stop.h"

/* Puts @fd in raw mode when it is a TTY; registers restoration at exit
 * and on fatal signals. Returns 0 (not a TTY is not an error). */
int terminal_raw(int fd, struct kv_err *e) KV_MUST_CHECK;
void terminal_restore(void);

/* Escape-sequence filter: Ctrl-A x asks to quit, Ctrl-A Ctrl-A is a
 * literal Ctrl-A, other Ctrl-A sequences pass through unchanged. */
struct escape_state {
	bool after_ctrl_a;
};
/* Filters @in (n bytes) into @out (room for 2n); returns bytes written
 * and sets *quit when Ctrl-A x was seen (input after it is dropped). */
size_t terminal_escape_filter(struct escape_state *st, const uint8_t *in, size_t n,
		     uint8_t *out, bool *quit);

/* The signals terminal_run takes: those that stop the VM (SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT) and SIGWINCH (the terminal's new size). Block
 * them in every thread before any starts; terminal_run receives them. */
void terminal_stop_signals(sigset_t *set);

/* What the terminal loop works with; it knows no VM. */
struct terminal_cfg {
	int in_fd;                  /* -1: no input (--exec) */
	bool use_escape;            /* apply the Ctrl-A escape (TTY input) */
	int stop_fd;                /* readable once the VM stopped: the loop ends */
	struct console_input input; /* where the guest's input goes */
	/* Ends the VM: Ctrl-A x (STOP_USER, @signo 0) or a termination
	 * signal (STOP_SIGNAL, @signo the signal). */
	void (*request_stop)(void *ctx, enum vm_stop_cause cause, int signo);
	/* The size of the terminal on in_fd, at start and on each SIGWINCH
	 * (NULL: not wanted; not called when in_fd is no terminal). */
	void (*resize)(void *ctx, unsigned cols, unsigned rows);
	void *ctx;
};

/* Main-thread loop until the VM stops: stdin -> the console input,
 * termination signals -> stop. */
int terminal_run(const struct terminal_cfg *cfg, struct kv_err *e) KV_MUST_CHECK;

#endif
