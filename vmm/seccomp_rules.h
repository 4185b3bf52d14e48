/* Private to vmm/seccomp*.c: what each kind of thread may call. */
#ifndef KVMINI_VMM_SECCOMP_RULES_H
#define KVMINI_VMM_SECCOMP_RULES_H

#include <seccomp.h>
#include <sys/types.h>

/* SC_ASAN: built with AddressSanitizer, whose runtime needs a few more
 * calls (and whose LeakSanitizer cannot run under a filter). */
#if defined(__SANITIZE_ADDRESS__)
#define SC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_ASAN 1
#endif
#endif

/* Adds the allow rules of thread kind @kind (enum seccomp_thread) to
 * @ctx; @pid is kvmini's own process id, the only tgkill target. 0 or
 * a negative errno from libseccomp. */
int seccomp_rules_add(scmp_filter_ctx ctx, unsigned kind, pid_t pid);

/* The file-system calls of the virtio-fs workers (vmm/seccomp_rules_fs.c). */
int seccomp_rules_add_fs(scmp_filter_ctx ctx);

#endif
