/* Tiny guests on /dev/kvm with the seccomp filters on, the way kvmini
 * runs: seccomp_enable before vm_start (each vCPU thread installs its
 * filter), the main thread's filter right after vm_start, teardown and
 * exit under it. Each VM runs in a forked child so that the main filter
 * never reaches the check runner; the child reports by exit status and
 * stderr. A device handler on the vCPU thread that makes a forbidden call
 * must end the process with the documented line and status. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/bus.h"
#include "kvmini/config.h"
#include "kvmini/layout.h"
#include "kvmini/seccomp.h"
#include "kvmini/vm.h"
#include "../unit/check_main.h"

extern const uint8_t guest_real_start[], guest_real_end[];
extern const uint8_t guest_triple_start[], guest_triple_end[];
extern const uint8_t guest_spin_start[], guest_spin_end[];

#define TEST_PORT 0xe0

/* Child exit codes besides the VM's own status. */
#define CHILD_SETUP_FAILED 90
#define CHILD_WRONG_STOP   91

struct testdev {
	struct vm *vm;
	unsigned writes;
	bool forbidden_on_write; /* make a call outside the vCPU list */
};

static void pio_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0x5a, len);
}

static void pio_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct testdev *d = opaque;

	__atomic_add_fetch(&d->writes, 1, __ATOMIC_RELAXED);
	if (d->forbidden_on_write)
		socket(AF_INET, SOCK_DGRAM, 0); /* never returns: SIGSYS */
	if (off == 0xf)
		vm_request_stop(d->vm, STOP_POWEROFF);
}

static const struct bus_ops pio_ops = { pio_read, pio_write };

struct guest {
	const uint8_t *start, *end;
	unsigned cpus;
	bool irqchip;
	bool forbidden;
	enum vm_stop_cause want;
	bool long_mode;         /* loaded at 1 MiB, entered in 64-bit mode */
};

/* In the child: the whole life of a VM under the filters. Exits with the
 * VM's exit status, or CHILD_* when something else went wrong. */
static void child_run(const struct guest *g)
{
	struct vm_config cfg = {
		.memory = 16 << 20, .cpus = g->cpus, .irqchip = g->irqchip,
		.pc_devices = false, .console_out_fd = -1,
	};
	struct boot_entry entry = { .kind = ENTRY_REAL16, .rip = 0x1000 };
	uint64_t load_at = 0x1000;
	struct testdev d = { .forbidden_on_write = g->forbidden };
	struct kv_err e = { 0 };
	struct vm *vm;
	enum vm_stop_cause cause;
	int status;

	if (seccomp_enable(&e) || vm_create(&vm, &cfg, &e)) {
		fprintf(stderr, "setup: %s\n", e.msg);
		exit(CHILD_SETUP_FAILED);
	}
	d.vm = vm;
	if (g->long_mode) {
		entry = (struct boot_entry){ .kind = ENTRY_LINUX64, .rip = 0x100000 };
		load_at = 0x100000;
		if (boot_write_x86_tables(&vm->mem, ENTRY_LINUX64))
			exit(CHILD_SETUP_FAILED);
	}
	if (bus_register(&vm->pio, TEST_PORT, 16, &pio_ops, &d, "testdev", &e) ||
	    gm_write(&vm->mem, load_at, g->start, (size_t)(g->end - g->start)) ||
	    vm_set_entry(vm, &entry, &e) || vm_start(vm, &e) ||
	    seccomp_thread_start(SECCOMP_MAIN, &e)) {
		fprintf(stderr, "start: %s\n", e.msg);
		exit(CHILD_SETUP_FAILED);
	}
	cause = vm_wait(vm);
	status = vm_exit_status(vm);
	vm_destroy(vm);
	if (cause != g->want) {
		fprintf(stderr, "stop cause %d, wanted %d\n", cause, g->want);
		exit(CHILD_WRONG_STOP);
	}
	exit(status); /* exit, not _exit: atexit and sanitizer checks run filtered too */
}

struct outcome {
	int status;
	char err[4096];
};

static struct outcome run_child(const struct guest *g)
{
	struct outcome o = { 0 };
	size_t got = 0;
	ssize_t n;
	int pfd[2];
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		alarm(30); /* a child that hangs must not outlive the test */
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		child_run(g);
	}
	close(pfd[1]);
	while (got < sizeof(o.err) - 1 && (n = read(pfd[0], o.err + got, sizeof(o.err) - 1 - got)) > 0)
		got += (size_t)n;
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &o.status, 0), pid);
	return o;
}

static void expect_exit(const struct outcome *o, int code)
{
	ck_assert_msg(WIFEXITED(o->status) && WEXITSTATUS(o->status) == code,
		      "child status 0x%x (wanted exit %d); stderr:\n%s", o->status, code, o->err);
}

START_TEST(real_mode_guest_runs_filtered)
{
	struct guest g = { guest_real_start, guest_real_end, 1, false, false, STOP_HALTED, false };
	struct outcome o = run_child(&g);

	expect_exit(&o, KVMINI_EXIT_OK);
	ck_assert_msg(!strstr(o.err, "seccomp"), "stderr: %s", o.err);
}
END_TEST

/* The crash path dumps registers (KVM_GET_REGS/SREGS, stdio) on the vCPU. */
START_TEST(crash_dump_runs_filtered)
{
	struct guest g = { guest_triple_start, guest_triple_end, 1, false, false, STOP_GUEST_CRASH, true };
	struct outcome o = run_child(&g);

	expect_exit(&o, KVMINI_EXIT_GUEST_CRASH);
	ck_assert_msg(strstr(o.err, "registers"), "no register dump:\n%s", o.err);
	ck_assert_msg(!strstr(o.err, "seccomp"), "stderr: %s", o.err);
}
END_TEST

/* Two vCPUs with the in-kernel irqchip: the stop kicks the other thread
 * (tgkill) out of KVM_RUN, all under the filters. */
START_TEST(stop_kick_runs_filtered)
{
	struct guest g = { guest_spin_start, guest_spin_end, 2, true, false, STOP_POWEROFF, false };
	struct outcome o = run_child(&g);

	expect_exit(&o, KVMINI_EXIT_OK);
	ck_assert_msg(!strstr(o.err, "seccomp"), "stderr: %s", o.err);
}
END_TEST

START_TEST(forbidden_call_on_vcpu_kills)
{
	struct guest g = { guest_real_start, guest_real_end, 1, false, true, STOP_HALTED, false };
	struct outcome o = run_child(&g);
	char want[128];

	expect_exit(&o, KVMINI_EXIT_FAILURE);
	snprintf(want, sizeof(want), "kvmini: seccomp: thread vcpu made forbidden system call %d (socket)",
		 SYS_socket);
	ck_assert_msg(strstr(o.err, want), "stderr lacks '%s':\n%s", want, o.err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("seccomp-guests");
	TCase *tc = tcase_create("kvm");

	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("SKIP: no usable /dev/kvm\n");
		return 77;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, real_mode_guest_runs_filtered);
	tcase_add_test(tc, crash_dump_runs_filtered);
	tcase_add_test(tc, stop_kick_runs_filtered);
	tcase_add_test(tc, forbidden_call_on_vcpu_kills);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
