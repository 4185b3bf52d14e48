/* The CPUID a guest sees (vmm/cpu_x86.c): the topology fixups and the
 * --cpu default masks (5-level paging, VMX, SVM hidden; MTRR shown), on
 * a synthetic KVM_GET_SUPPORTED_CPUID with every bit set. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "kvmini/cpu_x86.h"
#include "../check_main.h"

#define NENT 4

static struct kvm_cpuid2 *all_ones(void)
{
	static const uint32_t fn[NENT] = { 1, 7, 0x80000001, 0x80000008 };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NENT * sizeof(c->entries[0]));

	ck_assert_ptr_nonnull(c);
	c->nent = NENT;
	for (unsigned i = 0; i < NENT; i++) {
		c->entries[i].function = fn[i];
		c->entries[i].eax = c->entries[i].ebx = c->entries[i].ecx = c->entries[i].edx = ~0u;
	}
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn)
			return &c->entries[i];
	ck_abort_msg("no leaf %#x", fn);
	return NULL;
}

START_TEST(default_hides_what_nesting_cannot_honour)
{
	struct kvm_cpuid2 *base = all_ones(), *out = all_ones();

	cpu_fixup_cpuid(base, out, 1, 2, CPU_MODEL_DEFAULT);
	ck_assert_uint_eq(leaf(out, 7)->ecx & (1u << 16), 0);          /* LA57 */
	ck_assert_uint_eq(leaf(out, 1)->ecx & (1u << 5), 0);           /* VMX */
	ck_assert_uint_eq(leaf(out, 0x80000001)->ecx & (1u << 2), 0);  /* SVM */
	ck_assert_uint_ne(leaf(out, 1)->edx & (1u << 12), 0);          /* MTRR */
	ck_assert_uint_ne(leaf(out, 1)->ecx & (1u << 31), 0);          /* hypervisor */
	ck_assert_uint_eq(leaf(out, 1)->ebx >> 24, 1);                 /* APIC ID */
	/* Nothing else of leaf 7 ECX is touched. */
	ck_assert_uint_eq(leaf(out, 7)->ecx, ~(1u << 16));
	free(base);
	free(out);
}
END_TEST

START_TEST(host_passes_everything_through)
{
	struct kvm_cpuid2 *base = all_ones(), *out = all_ones();

	cpu_fixup_cpuid(base, out, 0, 1, CPU_MODEL_HOST);
	ck_assert_uint_eq(leaf(out, 7)->ecx, ~0u);
	ck_assert_uint_ne(leaf(out, 1)->ecx & (1u << 5), 0);
	ck_assert_uint_ne(leaf(out, 0x80000001)->ecx & (1u << 2), 0);
	free(base);
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cpu_x86");
	TCase *tc = tcase_create("cpuid");

	tcase_add_test(tc, default_hides_what_nesting_cannot_honour);
	tcase_add_test(tc, host_passes_everything_through);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
