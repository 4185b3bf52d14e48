/* KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): the VM's and
 * each vCPU's counters (exits by reason, nested page faults, huge page
 * mappings...) for the --report profile, without debugfs.
 *
 * A stats fd holds a header, one descriptor per statistic (its name,
 * type and where its values sit) and a data block. The header and the
 * descriptors are read once at setup (kvm_stats_open); at exit only the
 * data block is read again, with pread into memory allocated at setup. */
#ifndef KVMINI_KVM_STATS_H
#define KVMINI_KVM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini/err.h"

#define KVM_STATS_MAX_DESC 128   /* Linux 6.1 has about 40 per vCPU, 25 per VM */
#define KVM_STATS_NAME_MAX 64    /* its KVM_STATS_NAME_SIZE is 48 */
#define KVM_STATS_MAX_DATA 65536 /* bytes in a data block (histograms included) */

struct kvm_stat_desc {
	char name[KVM_STATS_NAME_MAX];
	uint32_t flags;   /* KVM_STATS_TYPE_*, KVM_STATS_UNIT_*, KVM_STATS_BASE_* */
	uint16_t size;    /* values (1 for a counter, buckets for a histogram) */
	uint32_t offset;  /* of its first value in the data block */
};

/* What the header and descriptors say. */
struct kvm_stats_schema {
	unsigned n;
	struct kvm_stat_desc desc[KVM_STATS_MAX_DESC];
	uint32_t data_offset;   /* of the data block in the fd */
	uint32_t data_len;      /* bytes of the data block the descriptors cover */
};

/* Parses the first @len bytes of a stats fd (header and descriptors; the
 * data block need not be there). Every offset and size is checked
 * against @len and the limits above; -EINVAL with a message otherwise. */
int kvm_stats_parse(const void *buf, size_t len, struct kvm_stats_schema *s,
		    struct kv_err *e) KV_MUST_CHECK;

/* True for a statistic with one value that counts or measures
 * (cumulative, instant or peak), not a histogram. */
bool kvm_stats_is_scalar(const struct kvm_stat_desc *d);

/* The value of scalar statistic @i in data block @data (@len bytes,
 * what the fd holds from data_offset on); 0 when it lies past @len. */
uint64_t kvm_stats_value(const struct kvm_stats_schema *s, unsigned i, const void *data,
			 size_t len);

/* Index of the statistic named @name, or -1. */
int kvm_stats_find(const struct kvm_stats_schema *s, const char *name);

/* One stats fd, opened and parsed at setup, read at exit. */
struct kvm_stats_src {
	int fd;                     /* -1: none */
	struct kvm_stats_schema schema;
	uint8_t *data;              /* data_len bytes, allocated at open */
};

/* KVM_GET_STATS_FD on @kvm_obj_fd (a VM or vCPU fd) and the schema.
 * -ENOTTY when this KVM has no binary statistics. */
int kvm_stats_open(struct kvm_stats_src *src, int kvm_obj_fd, struct kv_err *e) KV_MUST_CHECK;
/* Reads the data block now (pread; no allocation). */
int kvm_stats_read(struct kvm_stats_src *src) KV_MUST_CHECK;
void kvm_stats_close(struct kvm_stats_src *src);

#endif
