#!/bin/bash
# bootbench-smoke-check.sh: checks bootbench-smoke.sh's reruns of a failed
# L1 against a stand-in for tools/bootbench (BOOTBENCH) that plays one
# script of attempts: attempt K gives numbers for the first F_K rows it was
# asked for, then either reports (L1-EXIT) or ends like a frozen L1. The
# smoke must run only the rows still short of N starts (the starts each
# row gave in earlier L1s count), at most four L1s, and pass or fail as the
# rows say. Seconds, on the host.
#
# usage: tests/e2e/bootbench-smoke-check.sh
# Exit status: 0 every scenario behaved as expected; 1 not (said which).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bootbench-smoke-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# The stand-in. $work/plan holds one line per attempt: "ROWS_DONE frozen
# [PARTIAL]" or "ROWS_DONE reported" (ROWS_DONE: how many of its L1 rows
# get numbers for every start, 'all' for every one; the others get
# numbers for PARTIAL starts, default 0). Floor rows (unless --no-floor)
# always get numbers.
cat > "$work/bootbench" <<'EOF'
#!/bin/bash
dir=$(dirname "$0")
k=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$k" > "$dir/count"
echo "$*" >> "$dir/args"
n=2 rows= floor=1 out=
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) n=$2; shift ;;
    --rows) rows=$2; shift ;;
    --no-floor) floor=0 ;;
    --out) out=$2; shift ;;
    esac
    shift
done
read -r done how partial < <(sed -n "${k}p" "$dir/plan")
mkdir -p "$out"
i=0
for r in $rows; do
    i=$((i + 1))
    ok=${partial:-0}
    [[ $done == all || $i -le $done ]] && ok=$n
    echo "summary,$r,\"label, with comma\",$n,$ok,1.5,1.4,1.6,2.5,2.4,2.6,1000,1.0,500,10,100"
done > "$out/bootbench.csv"
if [[ $floor -eq 1 ]]; then
    for r in floor-bzimage floor-pvh; do
        echo "summary,$r,\"floor\",$n,$n,1.5,1.4,1.6,2.5,2.4,2.6,1000,-,-,-,-"
    done >> "$out/bootbench.csv"
fi
echo png > "$out/bootbench.png"
if [[ $how == frozen ]]; then
    echo "nested-run: the L1 machine FROZE" > "$out/run.log"
    exit 125
fi
echo "L1-EXIT=0" > "$out/run.log"
[[ $done == all ]] || exit 1
exit 0
EOF
chmod +x "$work/bootbench"

all="kvmini-bzimage kvmini-pvh qemu-pc qemu-pvh qemu-microvm kvmini-rootfs qemu-9p-root kvmini-rootfs-pvh qemu-9p-root-pvh runc unshare"

# scenario NAME WANT_STATUS WANT_ATTEMPTS WANT_LAST_ARGS PLAN_LINE...
scenario() {
    local name=$1 want_status=$2 want_attempts=$3 want_args=$4
    shift 4
    rm -rf "$work/count" "$work/args" "$work/out"
    printf '%s\n' "$@" > "$work/plan"
    local out status ran last
    out=$(BOOTBENCH=$work/bootbench BOOTBENCH_SMOKE_OUT=$work/out "$here/bootbench-smoke.sh" 2>&1)
    status=$?
    ran=$(cat "$work/count" 2>/dev/null || echo 0)
    last=$(tail -n 1 "$work/args" 2>/dev/null | sed "s|$work/out/||")
    if [[ $status -ne $want_status || $ran -ne $want_attempts || $last != "$want_args" ]] ||
       grep -q 'bad array subscript\|unbound variable\|syntax error\|command not found' <<< "$out"; then
        echo "FAIL $name: exit $status (want $want_status), $ran attempt(s) (want $want_attempts), last arguments '$last' (want '$want_args')"
        sed 's/^/    /' <<< "$out"
        failures=$((failures + 1))
        return
    fi
    echo "PASS $name"
}

scenario first-run-complete 0 1 "-n 2 --rows $all --out attempt1" "all reported"
scenario frozen-after-three 0 2 "-n 2 --rows qemu-pvh qemu-microvm kvmini-rootfs qemu-9p-root kvmini-rootfs-pvh qemu-9p-root-pvh runc unshare --no-floor --out attempt2" \
    "3 frozen" "all reported"
scenario frozen-twice 0 3 "-n 2 --rows runc unshare --no-floor --out attempt3" \
    "3 frozen" "6 frozen" "all reported"
scenario frozen-four-times 1 4 "-n 2 --rows unshare --no-floor --out attempt4" \
    "3 frozen" "6 frozen" "1 frozen" "0 frozen"
# CI, 2026-12-05: the second L1 froze after one start of each row, the
# third too. Those starts count: the next L1 runs one more of each.
scenario partial-starts-count 0 2 "-n 1 --rows $all --no-floor --out attempt2" \
    "0 frozen 1" "all reported"
scenario partial-then-none 0 3 "-n 1 --rows runc unshare --no-floor --out attempt3" \
    "9 frozen 1" "0 frozen" "all reported"
# An L1 that reported: rows without numbers are kvmini's (or a peer's)
# failures, not the emulated machine's: no rerun.
scenario reported-missing-rows 1 1 "-n 2 --rows $all --out attempt1" "9 reported"

if [[ $failures -ne 0 ]]; then
    echo "bootbench-smoke-check: $failures scenario(s) FAILED"
    exit 1
fi
echo "bootbench-smoke-check: every scenario behaved as expected"
