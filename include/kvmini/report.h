/* Boot milestones measured by kvmini and the --report json output. */
#ifndef KVMINI_REPORT_H
#define KVMINI_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
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

/* One of KVM's statistics for this VM (a vCPU counter summed over the
 * vCPUs); @name is owned by whoever filled the report. */
struct report_stat {
	const char *name;
	uint64_t value;
};

struct virtio_fs_counts; /* include/kvmini/virtio_fs.h */

struct report {
	pthread_mutex_t lock;  /* milestones are marked from vCPU threads */
	double at[MS_COUNT];   /* seconds since process start; < 0: not reached */
	int exit_status;
	const char *stop_reason; /* "poweroff", "reset", "timeout", ... */
	bool has_command_status;
	int command_status;
	long peak_rss_kib;     /* getrusage ru_maxrss */
	/* The boot profile (issue 11): -1 / NULL when unknown. */
	double before_main_s;  /* from the process's creation to main() */
	const struct report_stat *kvm_stats; /* KVM_GET_STATS_FD, at the VM's end */
	unsigned nr_kvm_stats;
	long rss_kib;          /* resident at the VM's end */
	long guest_resident_kib; /* guest RAM resident then (counted in rss_kib) */
	long guest_hugetlb_kib;  /* guest RAM in hugetlbfs pages (not in rss_kib) */
	const struct virtio_fs_counts *shares; /* each --share's requests, at the VM's end */
	unsigned nr_shares;
};

void report_init(struct report *r);
void report_fini(struct report *r);
/* Records @ms at log_uptime() unless already recorded. @r may be NULL. */
void report_mark(struct report *r, enum report_milestone ms);
/* Writes @r as one JSON object and a newline. Returns 0 or -EIO. */
int report_write_json(struct report *r, FILE *f);

/* Seconds from this process's creation (the kernel's start time, 10 ms
 * resolution) until now; -1 when /proc cannot say. Call it early in main. */
double report_process_age(void);

/* The breakdown of KVM's exit counter in --report json's "kvm_exits":
 * what each named statistic counts. Exposed for the unit test. */
struct report_exit_class {
	const char *key;   /* in the JSON */
	const char *stat;  /* KVM's statistic */
};
extern const struct report_exit_class report_exit_classes[];
extern const unsigned report_nr_exit_classes;

/* JSON string literal for @s (quoted; ", \, control characters escaped;
 * other bytes, UTF-8 included, copied as they are). */
void report_json_string(FILE *f, const char *s);

#endif
