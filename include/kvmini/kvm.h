/* /dev/kvm: opening it, the API version and the capabilities kvmini needs. */
#ifndef KVMINI_KVM_H
#define KVMINI_KVM_H

#include <stdbool.h>
#include "kvmini/err.h"

/* Opens /dev/kvm (or $KVMINI_DEV_KVM), checks the API version and every
 * capability kvmini relies on. Returns the fd or a negative errno with a
 * message that says what to do. */
int kvm_open(struct kv_err *e) KV_MUST_CHECK;

/* True when the host CPU lacks VT-x/AMD-V (e.g. a paravirtual KVM such
 * as kvm_pvm): guests then run emulated, far too slowly to boot Linux.
 * Fills @why with a short reason. */
bool kvm_host_lacks_hw_virt(char *why, size_t len);

/* KVM_CHECK_EXTENSION on the /dev/kvm fd; <= 0 means absent. */
int kvm_check_cap(int kvm_fd, long cap);

#endif
