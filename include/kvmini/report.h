/* Boot milestones measured by kvmini and the --report json output. */
#ifndef KVMINI_REPORT_H
#define KVMINI_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

enum report_milestone {
	MS_PROCESS_START,      /* log_init in main: 0 by definition */
	MS_FIRST_VCPU_ENTRY,   /* the boot vCPU's first KVM_RUN */
	MS_FIRST_SERIAL_BYTE,  /* the guest's first byte on COM1 */
	MS_USERSPACE_UP,       /* the guest's init said so on the control port */
	MS_COMMAND_STARTED,
	MS_COMMAND_DONE,       /* --exec: the command's status arrived */
	MS_VM_EXIT,            /* all vCPUs stopped */
	MS_COUNT
};

struct report {
	pthread_mutex_t lock;  /* milestones are marked from vCPU threads */
	double at[MS_COUNT];   /* seconds since process start; < 0: not reached */
	int exit_status;
	const char *stop_reason; /* "poweroff", "reset", "timeout", ... */
	bool has_command_status;
	int command_status;
	long peak_rss_kib;     /* getrusage ru_maxrss */
};

void report_init(struct report *r);
void report_fini(struct report *r);
/* Records @ms at log_uptime() unless already recorded. @r may be NULL. */
void report_mark(struct report *r, enum report_milestone ms);
/* Writes @r as one JSON object and a newline. Returns 0 or -EIO. */
int report_write_json(struct report *r, FILE *f);

/* JSON string literal for @s (quoted; ", \, control characters escaped;
 * other bytes, UTF-8 included, copied as they are). */
void report_json_string(FILE *f, const char *s);

#endif
