/* The VM's KVM statistics for --report: the VM's own (huge page
 * mappings...) and the vCPUs' counters (exits by reason...), summed over
 * the vCPUs. Everything is opened and allocated at setup; collecting at
 * the end reads the data blocks only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "kvmini/kvm_stats.h"
#include "kvmini/log.h"
#include "kvmini/vm.h"
#include "vm_stats.h"

struct vm_stats {
	struct kvm_stats_src vm;
	struct kvm_stats_src *vcpu;     /* one per vCPU */
	unsigned nr_vcpu;
	struct report_stat *out;        /* the scalars of vm, then of vcpu[0] */
	unsigned nr_out;
};

static bool same_schema(const struct kvm_stats_schema *a, const struct kvm_stats_schema *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->desc[i].name, b->desc[i].name) || a->desc[i].offset != b->desc[i].offset)
			return false;
	return true;
}

static int open_all(struct vm *vm, struct vm_stats *st, struct kv_err *e)
{
	int r = kvm_stats_open(&st->vm, vm->vm_fd, e);

	if (r)
		return r;
	st->vcpu = calloc(vm->nr_vcpus, sizeof(*st->vcpu));
	if (!st->vcpu)
		return kv_err_set(e, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		r = kvm_stats_open(&st->vcpu[i], vm->vcpus[i].fd, e);
		st->nr_vcpu++;
		if (r)
			return r;
		if (!same_schema(&st->vcpu[0].schema, &st->vcpu[i].schema))
			return kv_err_set(e, -EINVAL, "vCPU %u's statistics differ from vCPU 0's", i);
	}
	st->out = calloc(st->vm.schema.n + (st->nr_vcpu ? st->vcpu[0].schema.n : 0),
			 sizeof(*st->out));
	return st->out ? 0 : kv_err_set(e, -ENOMEM, "out of memory");
}

static void stats_free(struct vm_stats *st)
{
	kvm_stats_close(&st->vm);
	for (unsigned i = 0; i < st->nr_vcpu; i++)
		kvm_stats_close(&st->vcpu[i]);
	free(st->vcpu);
	free(st->out);
	free(st);
}

int vm_stats_init(struct vm *vm, struct kv_err *e)
{
	struct vm_stats *st;
	struct kv_err why = { 0 };

	if (!vm->cfg.kvm_stats)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return kv_err_set(e, -ENOMEM, "out of memory");
	st->vm.fd = -1;
	if (open_all(vm, st, &why)) {
		LOG_DEBUG("no KVM statistics in the report: %s", why.msg);
		stats_free(st);
		return 0;
	}
	vm->stats = st;
	return 0;
}

void vm_stats_fini(struct vm *vm)
{
	if (vm->stats)
		stats_free(vm->stats);
	vm->stats = NULL;
}

/* Adds (or, for a peak, takes the larger of) @src's scalars into out. */
static void add_scalars(struct vm_stats *st, const struct kvm_stats_src *src, unsigned *k,
			bool first)
{
	const struct kvm_stats_schema *s = &src->schema;

	for (unsigned i = 0; i < s->n; i++) {
		const struct kvm_stat_desc *d = &s->desc[i];
		uint64_t v;

		if (!kvm_stats_is_scalar(d))
			continue;
		v = kvm_stats_value(s, i, src->data, s->data_len);
		if (first) {
			st->out[*k] = (struct report_stat){ d->name, v };
		} else if ((d->flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_PEAK) {
			if (v > st->out[*k].value)
				st->out[*k].value = v;
		} else {
			st->out[*k].value += v;
		}
		(*k)++;
	}
}

int vm_stats_collect(struct vm *vm, struct report *r)
{
	struct vm_stats *st = vm->stats;
	unsigned k = 0, base;
	int err;

	if (!st || !r)
		return -ENOTSUP;
	err = kvm_stats_read(&st->vm);
	for (unsigned i = 0; i < st->nr_vcpu && !err; i++)
		err = kvm_stats_read(&st->vcpu[i]);
	if (err)
		return err;
	add_scalars(st, &st->vm, &k, true);
	base = k;
	for (unsigned i = 0; i < st->nr_vcpu; i++) {
		k = base;
		add_scalars(st, &st->vcpu[i], &k, i == 0);
	}
	r->kvm_stats = st->out;
	r->nr_kvm_stats = k;
	return 0;
}
