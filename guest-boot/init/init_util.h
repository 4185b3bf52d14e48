/* What the parts of kvmini's built-in init share (guest-boot/init/):
 * the console and control-port helpers and small file utilities. Only
 * for the init, a separate static program. */
#ifndef KVMINI_INIT_UTIL_H
#define KVMINI_INIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kvmini/init_conf.h"

/* The control port (include/kvmini/layout.h, devices/control_port.c). */
#define CTL_PORT        0x5a0
#define CTL_EVENT       0
#define CTL_STATUS      1
#define CTL_EV_UP       1
#define CTL_EV_STARTED  2

extern bool exec_mode;
extern int exec_err_fd;   /* ttyS2 under --exec: the user sees it even with --quiet */
extern bool have_ports;   /* ioperm on the control port worked */

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void power_off(void) __attribute__((noreturn));
void ctl(unsigned reg, unsigned char v);
char *slurp(const char *path, size_t max, size_t *len);
int write_file(const char *path, const void *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
void set_env(const struct init_conf *c);
int open_raw_tty(const char *path);

/* The --net user NICs (init_net.c): DHCP on each MAC of @macs, the
 * kernel command line's kvmini.dhcp= value ("" for none). */
void net_configure(const char *macs);

/* --exec (init_exec.c). */
void run_command(const struct init_conf *c, const char *cmd, size_t len) __attribute__((noreturn));
/* True when the command should run under the root's own init: asked
 * for, or auto with a disk root whose /sbin/init is systemd. */
bool exec_under_system(const struct init_conf *c, const struct kcmdline *k);
/* Installs the command as a systemd service in /run (the root is not
 * written) and copies this program there to run it; @conf_text is
 * /kvmini/init.conf as read. The caller then execs the system's init. */
void exec_prepare_system(const char *conf_text, size_t conf_len, const char *cmd, size_t len);
/* The service's entry (argv[1] == EXEC_SERVICE_ARG): runs the command,
 * reports its status, and asks systemd to power off. */
#define EXEC_SERVICE_ARG "--kvmini-exec-service"
int exec_service_main(void);

#endif
