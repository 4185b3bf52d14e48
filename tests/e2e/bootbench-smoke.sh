#!/bin/bash
# bootbench-smoke.sh: CI smoke test of tools/bootbench. Runs it with N=2
# (in one nested L1 on machines without hardware virtualization) and checks
# that EVERY row (kvmini bzImage and PVH, QEMU pc, PVH and microvm, kvmini
# --rootfs / and QEMU's 9p root, both also through PVH, runc, unshare,
# and the TCG floor from the bzImage and through PVH) gave numbers
# for both starts: time to userspace, time to exit and peak RSS, and for
# the VMs in L1 KVM's exits per boot, read back from the CSV; and that the
# plot was drawn. How big the numbers are is not checked. Prints the table,
# and for each failure why.
#
# usage: tests/e2e/bootbench-smoke.sh [KVMINI [VMMSTAT]]
#        tests/e2e/bootbench-smoke.sh --check DIR   (only check an earlier
#        run's output folder)
#   (defaults: $KVMINI, $VMMSTAT, else what tools/bootbench finds in build/)
# environment: BOOTBENCH_SMOKE_OUT (output folder, default a temporary one,
#   removed on success); BOOTBENCH (the bootbench to run, default
#   tools/bootbench: a stand-in checks this script's reruns).
# Exit status: 0 every row gave numbers; 1 not (never a pass); 77 (meson's
# skip) only when qemu-system-x86_64 is missing, so no L1 can run.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
n=2
rows="kvmini-bzimage kvmini-pvh qemu-pc qemu-pvh qemu-microvm kvmini-rootfs qemu-9p-root kvmini-rootfs-pvh qemu-9p-root-pvh runc unshare floor-bzimage floor-pvh"

fail() { echo "BOOTBENCH SMOKE FAILED: $*"; echo "BOOTBENCH SMOKE FAILED: $*" >&2; }

check_only=
if [[ ${1:-} == --check ]]; then
    check_only=${2:?--check needs a folder}
    set --
fi
[[ $# -ge 1 ]] && export KVMINI=$1
[[ $# -ge 2 ]] && export VMMSTAT=$2
if ! command -v qemu-system-x86_64 >/dev/null; then
    fail "qemu-system-x86_64 is not installed: no L1 can run (SKIP, not a pass)"
    exit 77
fi

out=${BOOTBENCH_SMOKE_OUT:-$check_only}
keep=1
if [[ -z $out ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/bootbench-smoke.XXXXXX")
    keep=0
fi

# check_row CSV ROW: sets row_ok to how many starts of ROW gave numbers
# in CSV (tools/bootbench's; 0 when their numbers are incomplete), and
# row_why to what is wrong or why starts did not run (empty when nothing
# is: the row's times, peak RSS and, for VMs, KVM exit count are there).
check_row() {
    local csv=$1 r=$2 line want ok us ex rss exits
    local num='^[0-9]+([.][0-9]+)?$'
    row_ok=0 row_why=
    # summary,<row>,"<label>",n,ok,us,us_min,us_max,ex,ex_min,ex_max,rss_kb,
    #   guest_uptime_s,kvm_exits,pages_2m,vmm_overhead_kb
    line=$(grep "^summary,$r," "$csv" 2>/dev/null | sed 's/"[^"]*"/L/')
    IFS=, read -r _ _ _ want ok us _ _ ex _ _ rss _ exits _ <<< "$line"
    if [[ -z $line ]]; then
        row_why="no summary line in $csv"
    elif [[ ! $want =~ $num || ! $ok =~ $num ]]; then
        row_why="unreadable summary line: $line"
    elif [[ $ok -eq 0 ]]; then
        row_why="no start gave numbers"
    elif [[ ! $us =~ $num ]]; then
        row_why="no time to userspace ('$us')"
    elif [[ ! $ex =~ $num ]]; then
        row_why="no time to exit ('$ex')"
    elif [[ ! $rss =~ $num ]]; then
        row_why="no peak RSS ('$rss')"
    elif [[ ( $r == kvmini-* || $r == qemu-* ) && ! $exits =~ $num ]]; then
        row_why="no KVM exit count ('$exits')"
    else
        row_ok=$ok
    fi
    local skip
    skip=$(grep -m1 "^BOOTBENCH-SKIP $r " "$(dirname "$csv")/run.log" 2>/dev/null | cut -d' ' -f3-)
    [[ -n $skip ]] && row_why="${row_why:+$row_why; }not run: $skip"
    return 0
}

# The emulated L1 itself sometimes wedges, panics or freezes whole before
# it reports (see tools/nested-run): that says nothing about bootbench, so
# the rows that have not yet given numbers for N starts run again in a new
# L1, at most four L1s in all, loudly (each attempt in its own folder,
# OUT/attemptK). Starts that gave numbers count in whichever L1 they ran
# (a smoke test: every row must work, N times; a benchmark's rows belong
# in one L1, and tools/bootbench keeps them there). A freeze is an L1
# whose console has been silent for NESTED_STALL s (each start prints its
# line within a minute, 25 s at most seen in CI; the whole smoke run takes
# 4 to 13 minutes): 240 s; or, found in about 30 s, one whose CPU lost a
# wake-up no kick cured (tools/l1-monitor.sh). The floor rows run on this
# machine, after the L1, in the same attempt.
export NESTED_STALL=${NESTED_STALL:-240}
attempts=4
declare -A why_missing=() got=()
missing=()
if [[ -n $check_only ]]; then
    adirs=("$check_only")
    status=0
else
    adirs=()
    missing=($rows)
fi
for r in ${missing[@]+"${missing[@]}"}; do got[$r]=0; done
for ((attempt = 1; attempt <= attempts && ${#missing[@]} > 0; attempt++)); do
    adir=$out/attempt$attempt
    l1_rows=() floor_args=(--no-floor) need=0
    for r in "${missing[@]}"; do
        if [[ $r == floor-* ]]; then floor_args=(); else l1_rows+=("$r"); fi
        ((n - got[$r] > need)) && need=$((n - got[$r]))
    done
    if [[ ${#l1_rows[@]} -eq 0 ]]; then
        break   # only floor rows missing: no L1 involved, not retried
    fi
    adirs+=("$adir")
    status=0
    "${BOOTBENCH:-$repo/tools/bootbench}" -n "$need" --rows "${l1_rows[*]}" ${floor_args[@]+"${floor_args[@]}"} \
        --out "$adir" || status=$?
    still=()
    for r in "${missing[@]}"; do
        check_row "$adir/bootbench.csv" "$r"
        got[$r]=$((got[$r] + row_ok))
        if ((got[$r] < n)); then
            still+=("$r")
            why_missing[$r]="${got[$r]} of $n starts gave numbers${row_why:+ (last L1: $row_why)}"
        fi
    done
    missing=(${still[@]+"${still[@]}"})
    [[ ${#missing[@]} -gt 0 && $attempt -lt $attempts ]] || break
    if [[ -f $adir/run.log ]] && ! grep -q 'L1-EXIT=' "$adir/run.log" &&
       grep -q '^nested-run: ' "$adir/run.log"; then
        fail "the L1 machine ended without reporting (attempt $attempt of $attempts, see above); the ${#missing[@]} row(s) short of $n starts (${missing[*]}) run again in a new L1"
        continue
    fi
    break   # the L1 reported: rows without numbers are real failures
done

problems=0
last=${adirs[${#adirs[@]} - 1]}
if [[ -n $check_only ]]; then
    for r in $rows; do
        check_row "$check_only/bootbench.csv" "$r"
        if ((row_ok < n)); then
            missing+=("$r")
            why_missing[$r]="$row_ok of $n starts gave numbers${row_why:+ ($row_why)}"
        fi
    done
fi
for r in ${missing[@]+"${missing[@]}"}; do
    fail "row $r: ${why_missing[$r]}"
    problems=1
done
if [[ ! -s $last/bootbench.png && ! -s $last/bootbench.svg ]]; then
    fail "no plot in $last (gnuplot missing or failed)"
    problems=1
fi
if [[ $problems -ne 0 ]]; then
    echo "bootbench smoke: outputs kept in $out"
    exit 1
fi
if [[ $status -ne 0 ]]; then
    fail "tools/bootbench exited with status $status although every row gave numbers"
    echo "bootbench smoke: outputs kept in $out"
    exit 1
fi
echo "bootbench smoke: every row gave numbers for $n starts (in ${#adirs[@]} L1 run(s))"
[[ $keep -eq 0 ]] && rm -rf "$out"
exit 0
