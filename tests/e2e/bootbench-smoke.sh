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
#   removed on success).
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

# The emulated L1 itself sometimes wedges, panics or freezes whole before
# it reports (see tools/nested-run): that says nothing about bootbench, so
# it runs again in a new L1, at most once more, loudly. A freeze is an L1
# whose console has been silent for NESTED_STALL s (each start prints its
# line within a minute, 25 s at most seen in CI; the whole smoke run takes
# 4 to 13 minutes): 240 s, so that a frozen L1 leaves time for the second.
export NESTED_STALL=${NESTED_STALL:-240}
status=0
for attempt in 1 2; do
    [[ -n $check_only ]] && break
    status=0
    "$repo/tools/bootbench" -n "$n" --out "$out" || status=$?
    if [[ -f $out/run.log ]] && ! grep -q 'L1-EXIT=' "$out/run.log" &&
       grep -q '^nested-run: ' "$out/run.log" && [[ $attempt -eq 1 ]]; then
        fail "the L1 machine ended without reporting (attempt $attempt, see above); running bootbench again in a new L1"
        continue
    fi
    break
done

problems=0
csv=$out/bootbench.csv
if [[ ! -s $csv ]]; then
    fail "tools/bootbench wrote no CSV ($csv; exit status $status)"
    exit 1
fi
for r in $rows; do
    # summary,<row>,"<label>",n,ok,us,us_min,us_max,ex,ex_min,ex_max,rss_kb,
    #   guest_uptime_s,kvm_exits,pages_2m,vmm_overhead_kb
    line=$(grep "^summary,$r," "$csv" | sed 's/"[^"]*"/L/')
    if [[ -z $line ]]; then
        fail "row $r: no summary line in the CSV"
        problems=1
        continue
    fi
    IFS=, read -r _ _ _ want ok us _ _ ex _ _ rss _ exits _ <<< "$line"
    why=$(grep -m1 "^BOOTBENCH-SKIP $r " "$out/run.log" 2>/dev/null | cut -d' ' -f3-)
    num='^[0-9]+([.][0-9]+)?$'
    if [[ ! $want =~ $num || ! $ok =~ $num ]]; then
        fail "row $r: unreadable summary line: $line"
        problems=1
        continue
    fi
    if [[ $ok -ne $want ]]; then
        fail "row $r: $ok of $want starts gave numbers${why:+ (not run: $why)}"
        problems=1
        continue
    fi
    [[ $us =~ $num ]] || { fail "row $r: no time to userspace ('$us')"; problems=1; }
    [[ $ex =~ $num ]] || { fail "row $r: no time to exit ('$ex')"; problems=1; }
    [[ $rss =~ $num ]] || { fail "row $r: no peak RSS ('$rss')"; problems=1; }
    if [[ $r == kvmini-* || $r == qemu-* ]]; then
        [[ $exits =~ $num ]] || { fail "row $r: no KVM exit count ('$exits')"; problems=1; }
    fi
done
if [[ ! -s $out/bootbench.png && ! -s $out/bootbench.svg ]]; then
    fail "no plot in $out (gnuplot missing or failed)"
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
echo "bootbench smoke: every row gave numbers for $n starts"
[[ $keep -eq 0 ]] && rm -rf "$out"
exit 0
