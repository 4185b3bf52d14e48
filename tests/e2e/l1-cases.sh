#!/bin/bash
# l1-cases.sh: the e2e cases, run INSIDE the nested L1 by tests/e2e/run-nested.sh
# (through tools/nested-run), all in one L1 boot. Each case boots the stock
# guest kernel with kvmini, drives the guest shell by piping commands into
# kvmini's stdin, and checks the captured console and exit status.
#
# usage (in L1): l1-cases.sh [--vmm PATH] [--only NAME[,NAME...]]
#                            [--case-timeout SECS]   (default 120)
#                            [--files F[,F...]]      (case files to source; default all)
#                            [--skip NAME[,NAME...]] (cases not to run: run-nested.sh
#                                                     passes those an L1 that froze had
#                                                     already reported)
#   --vmm PATH   the VMM to test (default $KVMINI); a stand-in with kvmini's
#                command line (tests/e2e/qemu-as-kvmini) can be given here
# environment: KVMINI, GUEST_KERNEL, GUEST_INITRD, PAYLOAD_FILES (from L1's
#   /init).
# Prints `PASS name` or `FAIL name: reason` per case, then `N passed, M failed`.
# Exit status: 0 if all passed, 1 otherwise (also when the cases could not
# run at all: that is never a pass).
set -uo pipefail
trap "" PIPE   # a write to a VMM that already exited must not end the script

vmm=${KVMINI:-}
only=
files=
skip=
case_timeout=120
while [[ $# -gt 0 ]]; do
    case $1 in
    --vmm) vmm=$2; shift ;;
    --only) only=,$2, ; shift ;;
    --files) files=,$2, ; shift ;;
    --skip) skip=,$2, ; shift ;;
    --case-timeout) case_timeout=$2; shift ;;
    *) echo "l1-cases: unknown argument '$1'"; exit 1 ;;
    esac
    shift
done
# The knobs run-nested.sh forwards (FAULT_KILL_REPS, SOAK_VMS, E2E_WATCH,
# E2E_PULSE).
# shellcheck disable=SC1091
[[ -f ${PAYLOAD_FILES:-/payload/files}/e2e-env.sh ]] && source "${PAYLOAD_FILES:-/payload/files}/e2e-env.sh"
work=${TMPDIR:-/tmp}/e2e
rm -rf "$work"
mkdir -p "$work"

passed=0 failed=0
env_error=
if [[ -z $vmm || ! -x $vmm ]]; then
    env_error="no kvmini executable in L1 (KVMINI='$vmm'): was build/kvmini built?"
elif [[ ! -c /dev/kvm ]]; then
    env_error="/dev/kvm is missing in L1: nested KVM did not come up"
elif [[ ! -f ${GUEST_KERNEL:-} || ! -f ${GUEST_INITRD:-} ]]; then
    env_error="guest kernel or initramfs missing in L1"
fi
kver=${GUEST_KERNEL##*/vmlinuz-}   # the version, from the file name
vmlinux=
for f in "${PAYLOAD_FILES:-/payload/files}"/vmlinux-*; do
    [[ -f $f ]] && vmlinux=$f
done

pass() { echo "PASS $1"; passed=$((passed + 1)); }

# fail NAME REASON [CASEDIR]: report, with the tail of the console and stderr.
fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
    if [[ -n ${3:-} ]]; then
        echo "    --- guest console (last 30 lines of $3/out) ---"
        tr -d '\r' < "$3/out" | tail -n 30 | sed 's/^/    | /'
        # A systemd guest says what it gave up on earlier (timeouts, units
        # that failed, the ones that depended on them).
        # (ESC itself from printf: L1's sed may not know \x1b.)
        local esc
        esc=$(printf '\033')
        if tr -d '\r' < "$3/out" | sed "s/$esc\\[[0-9;]*[A-Za-z]//g; s/$esc[A-Z]//g" |
            grep -aE '\[(FAILED| TIME |DEPEND)\]' > "$3/systemd-failures"; then
            echo "    --- systemd's failures on the console ---"
            head -n 20 "$3/systemd-failures" | sed 's/^/    | /'
        fi
        echo "    --- kvmini stderr (last 60 lines) ---"
        tr -d '\r' < "$3/err" | grep -v '^$' | tail -n 60 | sed 's/^/    | /'
        echo "    --- end ---"
    fi
}

want() { [[ ( -z $only || $only == *",$1,"* ) && $skip != *",$1,"* ]]; }

# boot NAME WHEN STDIN_LINES -- VMM_RUN_ARGS...: run `vmm run ARGS` bounded
# by the case timeout, its stdin a pipe (a FIFO) that gets the lines
#   WHEN=prompt: once the guest shell has printed its first prompt, as a
#     person would type them. (The guest's 8250 driver clears the UART's
#     receive FIFO when it opens the console, so a UART that takes bytes
#     before that loses them.)
#   WHEN=early: at once, before the guest has booted; this checks that the
#     VMM holds piped input until the guest reads it.
# Sets $dir (out, err, and txt: the console as clean text), $st (exit
# status) and $timed (1 if the case timeout ended it).
boot() {
    local name=$1 when=$2 lines=$3 pid t0 t1 waited=0 elapsed
    shift 4
    dir=$work/$name
    mkdir -p "$dir"
    mkfifo "$dir/in"
    t0=$(cut -d' ' -f1 /proc/uptime)
    # Boot milestones and, at exit, where each vCPU was: shown when a case fails.
    KVMINI_LOG=debug KVMINI_DUMP_ON_EXIT=1 \
        timeout -k 5 "$case_timeout" "$vmm" run "$@" < "$dir/in" > "$dir/out" 2> "$dir/err" &
    pid=$!
    exec 4> "$dir/in"
    if [[ $when == prompt ]]; then
        # The prompt ("/root # ", maybe followed by busybox's cursor
        # position query ESC[6n) ends the output.
        while kill -0 "$pid" 2>/dev/null && ! tail -c 12 "$dir/out" | grep -q '# '; do
            sleep 0.1
            waited=$((waited + 1))
            ((waited < case_timeout * 10)) || break
        done
    fi
    printf '%b' "$lines" >&4 2>/dev/null
    exec 4>&-
    st=0
    wait "$pid" || st=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    timed=$(awk -v e="$elapsed" -v t="$case_timeout" 'BEGIN { print (e >= t - 0.5) ? 1 : 0 }')
    tr -d '\r' < "$dir/out" > "$dir/txt"
    echo "    ($name: $vmm run $* -> status $st in ${elapsed}s)"
}

timed_out() { [[ $timed -eq 1 ]]; }

# shellcheck disable=SC2016  # expanded by the guest's shell
guest_cmds='echo UNAME=$(uname -r)\necho NPROC=$(nproc)\ngrep MemTotal /proc/meminfo\npoweroff -f\n'

# check_shell NAME CPUS MEM_MIB: the guest answered the three questions right.
check_shell() {
    local name=$1 cpus=$2 mem_mib=$3 uname nproc memkb lo hi
    if timed_out; then fail "$name" "timed out after ${case_timeout}s (status $st)" "$dir"; return; fi
    uname=$(grep -o 'UNAME=[0-9][^[:space:]]*' "$dir/txt" | head -n 1)
    nproc=$(grep -o 'NPROC=[0-9][0-9]*' "$dir/txt" | head -n 1)
    memkb=$(grep -o 'MemTotal: *[0-9]* kB' "$dir/txt" | head -n 1 | tr -dc '0-9')
    lo=$((mem_mib * 1024 * 8 / 10)) hi=$((mem_mib * 1024))
    if ! grep -q KVMINI-USERSPACE-UP "$dir/txt"; then
        fail "$name" "no KVMINI-USERSPACE-UP on the console: the guest never reached /init, or its console output was lost (status $st)" "$dir"
    elif [[ ${uname#UNAME=} != "$kver" ]]; then
        fail "$name" "uname -r gave '${uname#UNAME=}', expected '$kver'" "$dir"
    elif [[ ${nproc#NPROC=} != "$cpus" ]]; then
        fail "$name" "nproc gave '${nproc#NPROC=}', expected $cpus" "$dir"
    elif [[ -z $memkb ]] || ((memkb < lo || memkb > hi)); then
        fail "$name" "MemTotal '${memkb:-none}' kB outside [$lo, $hi] for ${mem_mib} MiB" "$dir"
    elif [[ $st -ne 0 ]]; then
        fail "$name" "exit status $st after poweroff -f, expected 0" "$dir"
    else
        pass "$name"
    fi
}

if [[ -n $env_error ]]; then
    echo "E2E ENVIRONMENT ERROR: $env_error"
    echo "E2E ENVIRONMENT ERROR: no case could run; this is a failure, not a pass"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "e2e: vmm=$vmm guest kernel $kver, per-case timeout ${case_timeout}s"

# The watchdog (tools/lib.sh, beside this script in L1): every E2E_WATCH
# seconds (default 300) while the cases run, L1's threads, so a case that
# hangs past every bound (a process that SIGKILL cannot end) is explained
# in the log that the L1 timeout leaves; every E2E_PULSE seconds (default
# 60) one line, by which run-nested.sh's stall bound (3 pulses) tells a
# live L1 from a frozen one.
# shellcheck source=../../tools/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
l1_watch e2e-watch "${E2E_WATCH:-300}" "${E2E_PULSE:-60}"
trap 'kill "$l1_watch_pid" 2>/dev/null' EXIT

base_cmdline="console=ttyS0 quiet panic=-1"
k=$GUEST_KERNEL i=$GUEST_INITRD

if want bzimage-1cpu; then
    boot bzimage-1cpu prompt "$guest_cmds" -- --kernel "$k" --initrd "$i" \
        --cmdline "$base_cmdline" --cpus 1 --memory 512M
    check_shell bzimage-1cpu 1 512
fi
if want bzimage-2cpu; then
    boot bzimage-2cpu prompt "$guest_cmds" -- --kernel "$k" --initrd "$i" \
        --cmdline "$base_cmdline" --cpus 2 --memory 512M
    check_shell bzimage-2cpu 2 512
fi
if want pvh-bzimage; then
    boot pvh-bzimage prompt "$guest_cmds" -- --kernel "$k" --initrd "$i" --boot pvh \
        --cmdline "$base_cmdline" --cpus 2 --memory 512M
    check_shell pvh-bzimage 2 512
fi
if want pvh-elf; then
    if [[ -z $vmlinux ]]; then
        fail pvh-elf "no unpacked ELF vmlinux in ${PAYLOAD_FILES:-/payload/files} (run-nested.sh makes it)"
    else
        boot pvh-elf prompt "$guest_cmds" -- --kernel "$vmlinux" --initrd "$i" \
            --cmdline "$base_cmdline" --cpus 1 --memory 512M
        check_shell pvh-elf 1 512
    fi
fi
if want memory-4g; then
    boot memory-4g prompt "$guest_cmds" -- --kernel "$k" --initrd "$i" \
        --cmdline "$base_cmdline" --cpus 1 --memory 4G
    check_shell memory-4g 1 4096
fi
if want default-console; then
    # No console= on the command line: kvmini adds console=ttyS0.
    boot default-console prompt "$guest_cmds" -- --kernel "$k" --initrd "$i" \
        --cmdline "quiet panic=-1" --cpus 1 --memory 512M
    check_shell default-console 1 512
fi
if want piped-early; then
    # The commands are piped in before the guest boots (kvmini promises to
    # feed stdin only as fast as the guest's UART reads it).
    boot piped-early early "$guest_cmds" -- --kernel "$k" --initrd "$i" \
        --cmdline "$base_cmdline" --cpus 1 --memory 512M
    check_shell piped-early 1 512
fi
if want triple-fault; then
    # reboot=t: Linux reboots by triple-faulting on purpose.
    boot triple-fault prompt 'reboot -f\n' -- --kernel "$k" --initrd "$i" \
        --cmdline "console=ttyS0 quiet reboot=t" --cpus 1 --memory 512M
    if timed_out; then
        fail triple-fault "timed out after ${case_timeout}s (status $st)" "$dir"
    elif [[ $st -ne 122 ]]; then
        fail triple-fault "exit status $st, expected 122 (guest crashed)" "$dir"
    elif ! grep -q 'triple fault' "$dir/err"; then
        fail triple-fault "stderr does not say 'triple fault'" "$dir"
    elif ! grep -q 'RIP=' "$dir/err"; then
        fail triple-fault "stderr has no register dump ('RIP=')" "$dir"
    else
        pass triple-fault
    fi
fi
if want reboot-k; then
    # reboot=k: the reset line of the i8042 keyboard controller.
    boot reboot-k prompt 'reboot -f\n' -- --kernel "$k" --initrd "$i" \
        --cmdline "console=ttyS0 quiet reboot=k" --cpus 1 --memory 512M
    if timed_out; then
        fail reboot-k "timed out after ${case_timeout}s (status $st)" "$dir"
    elif ! grep -q KVMINI-USERSPACE-UP "$dir/txt"; then
        fail reboot-k "no KVMINI-USERSPACE-UP on the console (status $st)" "$dir"
    elif [[ $st -ne 0 ]]; then
        fail reboot-k "exit status $st after reboot -f, expected 0" "$dir"
    else
        pass reboot-k
    fi
fi

# More cases, one file per area (run-nested.sh copies them into L1).
for f in "${PAYLOAD_FILES:-/payload/files}"/cases-*.sh; do
    [[ -z $files || $files == *",${f##*/},"* ]] || continue
    # shellcheck disable=SC1090
    [[ -f $f ]] && source "$f"
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
