/* The VM's KVM statistics for --report: the VM's own (huge page
 * mappings...) and the vCPUs' counters (exits by reason...), summed over
 * the vCPUs. Read once, when the VM has stopped, on the main thread: the
 * stats fds are opened then (KVM_GET_STATS_FD, allowed by the main
 * thread's filter), so starting a VM costs nothing for them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "kvmini/config_devices.h"
#include "kvmini/kvm_stats.h"
#include "kvmini/log.h"
#include "kvmini/virtio_fs.h"
#include "kvmini/vm.h"
#include "vm_stats.h"
#include "vm_virtio.h"

#define MAX_OUT (2 * KVM_STATS_MAX_DESC)

/* Allocated with the VM (before any filter), filled when it has stopped. */
struct vm_stats {
	struct kvm_stats_src src;       /* the fd being read, one at a time */
	struct report_stat out[MAX_OUT]; /* the VM's scalars, then the vCPUs' */
	char names[MAX_OUT][KVM_STATS_NAME_MAX]; /* what out[].name points to */
	struct virtio_fs_counts shares[CONFIG_MAX_SHARES];
};

int vm_stats_init(struct vm *vm, struct kv_err *e)
{
	if (!vm->cfg.kvm_stats)
		return 0;
	vm->stats = calloc(1, sizeof(*vm->stats));
	if (!vm->stats)
		return kv_err_set(e, -ENOMEM, "out of memory");
	vm->stats->src.fd = -1;
	return 0;
}

void vm_stats_fini(struct vm *vm)
{
	if (!vm->stats)
		return;
	kvm_stats_close(&vm->stats->src);
	free(vm->stats);
	vm->stats = NULL;
}

/* Adds @st->src's scalars to out[*k...]: set by the first source of a
 * kind, summed by the others (the larger kept for a peak). */
static int add_scalars(struct vm_stats *st, unsigned *k, bool first)
{
	const struct kvm_stats_schema *s = &st->src.schema;

	for (unsigned i = 0; i < s->n; i++) {
		const struct kvm_stat_desc *d = &s->desc[i];
		struct report_stat *o = &st->out[*k];
		uint64_t v;

		if (!kvm_stats_is_scalar(d))
			continue;
		if (*k >= MAX_OUT)
			return -E2BIG;
		v = kvm_stats_value(s, i, st->src.data, s->data_len);
		if (first) {
			memcpy(st->names[*k], d->name, sizeof(st->names[*k]));
			*o = (struct report_stat){ st->names[*k], v };
		} else if (strcmp(o->name, d->name)) {
			return -EINVAL;     /* vCPUs with different statistics */
		} else if ((d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_PEAK) {
			o->value = v > o->value ? v : o->value;
		} else {
			o->value += v;
		}
		(*k)++;
	}
	return 0;
}

/* Opens @fd's statistics, reads them, adds them and closes the fd. */
static int read_one(struct vm_stats *st, int fd, unsigned *k, bool first, struct kv_err *e)
{
	int r = kvm_stats_open(&st->src, fd, e);

	if (!r)
		r = kvm_stats_read(&st->src);
	if (!r)
		r = add_scalars(st, k, first);
	kvm_stats_close(&st->src);
	return r;
}

int vm_stats_collect(struct vm *vm, struct report *r)
{
	struct vm_stats *st = vm->stats;
	struct kv_err e = { 0 };
	unsigned k = 0, base;
	int err;

	if (!st || !r)
		return -ENOTSUP;
	r->nr_shares = vm_virtio_fs_counts(vm, st->shares, CONFIG_MAX_SHARES);
	r->shares = st->shares;
	err = read_one(st, vm->vm_fd, &k, true, &e);
	base = k;
	for (unsigned i = 0; !err && i < vm->nr_vcpus; i++) {
		k = base;
		err = read_one(st, vm->vcpus[i].fd, &k, i == 0, &e);
	}
	if (err) {
		LOG_DEBUG("no KVM statistics in the report: %s", e.msg[0] ? e.msg : strerror(-err));
		return err;
	}
	r->kvm_stats = st->out;
	r->nr_kvm_stats = k;
	return 0;
}
