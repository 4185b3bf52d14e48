#!/bin/bash
# bench-boot.sh: boot-time benchmark of kvmini against QEMU, in ONE nested L1
# (tools/nested-run --with-qemu), interleaved (A B C D A B C D ...), N boots
# of each (default 5), every guest with 1 vCPU and 512 MiB, the stock
# Debian kernel and the guest initramfs with kvmini.bench=1 (it prints
# KVMINI-USERSPACE-UP and KVMINI-UPTIME=<s>, then runs `poweroff -f`):
#   kvmini-bzimage  kvmini run --kernel bzImage
#   kvmini-pvh      kvmini run --kernel bzImage --boot pvh
#   qemu-pc         qemu-system-x86_64 -accel kvm -nodefaults -nographic
#                   -serial stdio -m 512M -kernel -initrd -append (-M pc)
#   qemu-microvm    the same with -M microvm. Its defaults include ACPI
#                   (acpi=auto means on: a GED device), so `poweroff -f`
#                   ends it like the others; no i8042, so reboot=k would
#                   loop (KVM-HERE.md); -no-reboot ends it on any reset.
# Each boot runs under vmmstat (time of the marker line, time of exit, peak
# RSS of the VMM process, per-boot timeout 180 s). Prints a table: median,
# min and max of marker and exit times, median peak RSS, median guest uptime
# at the marker, and each row's median marker time over qemu-pc's.
# kvmini rows are left out (said so) when build/kvmini does not exist.
#
# usage: tools/bench-boot.sh [N] [--log FILE]
#   (inside L1, tools/nested-run runs it as: bench-boot.sh --in-l1 N)
set -euo pipefail

LIB_PROG=bench-boot
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rows=(kvmini-bzimage kvmini-pvh qemu-pc qemu-microvm)
cmdline="console=ttyS0 quiet kvmini.bench=1"

# ---- inside L1 -------------------------------------------------------

in_l1() {
    local n=$1 i row work=/tmp/bench res line marker exit_s status rss up
    mkdir -p "$work"
    res=$work/results
    : > "$res"
    [[ -x ${VMMSTAT:-} ]] || die "no vmmstat in L1"
    [[ -x ${QEMU:-} ]] || die "no qemu in L1"
    [[ -c /dev/kvm ]] || die "no /dev/kvm in L1"
    local active=()
    for row in "${rows[@]}"; do
        if [[ $row == kvmini-* && ! -x ${KVMINI:-} ]]; then
            echo "bench: $row left out: no kvmini in this L1 (build/kvmini not built)"
            continue
        fi
        active+=("$row")
    done
    echo "bench: $n boots each of ${active[*]}, interleaved"
    for ((i = 1; i <= n; i++)); do
        for row in "${active[@]}"; do
            vmm_cmd "$row" --cmdline "$cmdline"
            : | "$VMMSTAT" --timeout 180 --out "$work/$row.$i.out" -- "${cmd[@]}" \
                2> "$work/$row.$i.err" || true
            line=$(grep '^vmmstat: ' "$work/$row.$i.err" | tail -n 1)
            marker=$(sed -n 's/.*marker_s=\([-0-9.]*\).*/\1/p' <<< "$line")
            exit_s=$(sed -n 's/.*exit_s=\([-0-9.]*\).*/\1/p' <<< "$line")
            status=$(sed -n 's/.*status=\([0-9]*\).*/\1/p' <<< "$line")
            rss=$(sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' <<< "$line")
            up=$(tr -d '\r' < "$work/$row.$i.out" | sed -n 's/^KVMINI-UPTIME=\([0-9.]*\).*/\1/p' | head -n 1)
            echo "bench: $row #$i marker_s=${marker:-?} exit_s=${exit_s:-?} status=${status:-?} maxrss_kb=${rss:-?} guest_uptime_s=${up:-?}"
            if [[ ${status:-x} != 0 || ${marker:--1} == -1* ]]; then
                echo "bench: $row #$i FAILED; its output (last 15 lines) and stderr:"
                tr -d '\r' < "$work/$row.$i.out" | tail -n 15 | sed 's/^/    | /'
                tail -n 10 "$work/$row.$i.err" | sed 's/^/    ! /'
                echo "$row FAIL" >> "$res"
            else
                echo "$row OK $marker $exit_s $rss ${up:--}" >> "$res"
            fi
        done
    done
    report "$res" "${active[@]}"
}

# median/min/max of the numbers on stdin, one a line: "med min max"
stats() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - -"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f %.2f %.2f\n", m, v[1], v[NR] }'
}

report() {
    local res=$1 row ok bad mk ex rs up base
    shift
    base=$(awk '$1 == "qemu-pc" && $2 == "OK" { print $3 }' "$res" | stats | cut -d' ' -f1)
    echo
    echo "BENCH RESULTS (1 vCPU, 512 MiB; seconds from VMM start; inside the nested L1)"
    printf '%-15s %5s  %-20s  %-20s  %8s  %9s  %8s\n' vmm ok \
        "marker med/min/max" "exit med/min/max" "rss_MiB" "uptime_s" "vs_pc"
    for row in "$@"; do
        ok=$(awk -v r="$row" '$1 == r && $2 == "OK"' "$res" | wc -l)
        bad=$(awk -v r="$row" '$1 == r && $2 == "FAIL"' "$res" | wc -l)
        read -r -a mk <<< "$(awk -v r="$row" '$1 == r && $2 == "OK" { print $3 }' "$res" | stats)"
        read -r -a ex <<< "$(awk -v r="$row" '$1 == r && $2 == "OK" { print $4 }' "$res" | stats)"
        rs=$(awk -v r="$row" '$1 == r && $2 == "OK" { print $5 / 1024 }' "$res" | stats | cut -d' ' -f1)
        up=$(awk -v r="$row" '$1 == r && $2 == "OK" && $6 != "-" { print $6 }' "$res" | stats | cut -d' ' -f1)
        local ratio=-
        if [[ ${mk[0]} != - && ${base:--} != - ]]; then
            ratio=$(awk -v a="${mk[0]}" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
        fi
        printf '%-15s %5s  %-20s  %-20s  %8s  %9s  %8s\n' "$row" "$ok/$((ok + bad))" \
            "${mk[0]}/${mk[1]}/${mk[2]}" "${ex[0]}/${ex[1]}/${ex[2]}" "$rs" "$up" "$ratio"
    done
    echo "(marker: KVMINI-USERSPACE-UP seen on the VMM's stdout; exit: VMM exited;"
    echo " rss: the VMM process's peak RSS; uptime: guest /proc/uptime at the marker;"
    echo " vs_pc: median marker time over qemu-pc's)"
    ! grep -q ' FAIL$' "$res"
}

if [[ ${1:-} == --in-l1 ]]; then
    in_l1 "${2:-5}"
    exit
fi

# ---- on the host -----------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
n=5 log=
while [[ $# -gt 0 ]]; do
    case $1 in
    --log) [[ $# -ge 2 ]] || die "--log needs a file"; log=$2; shift ;;
    -h|--help) sed -n '2,25s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) [[ $1 =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$1'"; n=$1 ;;
    esac
    shift
done
env_lines=$("$here/fetch-debian.sh" --print-env) || die "fetch-debian.sh failed"
eval "$env_lines"

# vmmstat: the meson-built one, else a static build of tools/vmmstat.c.
vmmstat=${VMMSTAT:-$repo/build/tools/vmmstat}
if [[ ! -x $vmmstat ]]; then
    vmmstat=$KVMINI_CACHE/vmmstat
    if [[ ! -x $vmmstat || $here/vmmstat.c -nt $vmmstat ]]; then
        echo "bench-boot: compiling $vmmstat" >&2
        cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -o "$vmmstat.tmp" "$here/vmmstat.c"
        mv "$vmmstat.tmp" "$vmmstat"
    fi
fi
# One L1 CPU: every guest has one vCPU anyway, and single-threaded TCG
# has wedged less often than two threads with QEMU running inside L1.
nested_args=(--with-qemu --smp "${BENCH_L1_SMP:-1}" --vmmstat "$vmmstat" --timeout $((600 + n * 4 * 190)))
[[ -n $log ]] && nested_args+=(--log "$log")
exec "$here/nested-run" "${nested_args[@]}" "$here/bench-boot.sh" --in-l1 "$n"
