#!/bin/bash
# l1-retry-check.sh: checks tests/e2e/l1-retry.sh, the e2e suites' rerun of
# a failed L1, against a stand-in for tools/nested-run that plays one
# script of attempts (what each attempt prints and its exit status) and
# records the arguments each attempt was given. Seconds, on the host.
#
# usage: tests/e2e/l1-retry-check.sh
# Exit status: 0 every scenario behaved as expected; 1 not (said which).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/l1-retry-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

# The stand-in: attempt K prints $work/attemptK.out and exits with the
# status in $work/attemptK.status; it appends its arguments to $work/args.
cat > "$work/standin" <<'EOF'
#!/bin/bash
dir=$(dirname "$0")
k=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$k" > "$dir/count"
echo "$*" >> "$dir/args"
cat "$dir/attempt$k.out" 2>/dev/null
exit "$(cat "$dir/attempt$k.status" 2>/dev/null || echo 99)"
EOF
chmod +x "$work/standin"

# scenario NAME WANT_STATUS WANT_ATTEMPTS WANT_LAST_ARGS ATTEMPT... where
# each ATTEMPT is "STATUS|LINE;LINE;...".
scenario() {
    local name=$1 want_status=$2 want_attempts=$3 want_args=$4
    shift 4
    rm -f "$work"/attempt* "$work/count" "$work/args"
    local k=0 spec
    for spec in "$@"; do
        k=$((k + 1))
        echo "${spec%%|*}" > "$work/attempt$k.status"
        tr ';' '\n' <<< "${spec#*|}" | sed '/^$/d' > "$work/attempt$k.out"
    done
    local out status ran last
    out=$("$here/l1-retry.sh" "$work/standin" --cases x 2>&1)
    status=$?
    ran=$(cat "$work/count" 2>/dev/null || echo 0)
    last=$(tail -n 1 "$work/args" 2>/dev/null)
    if [[ $status -ne $want_status || $ran -ne $want_attempts || $last != "$want_args" ]]; then
        echo "FAIL $name: exit $status (want $want_status), $ran attempt(s) (want $want_attempts), last arguments '$last' (want '$want_args')"
        sed 's/^/    /' <<< "$out"
        failures=$((failures + 1))
        return
    fi
    if grep -q 'bad array subscript\|unbound variable\|syntax error' <<< "$out"; then
        echo "FAIL $name: the shell complained:"
        sed 's/^/    /' <<< "$out"
        failures=$((failures + 1))
        return
    fi
    echo "PASS $name"
}

scenario all-pass 0 1 "--cases x" "0|PASS a;PASS b"
scenario case-failed-no-rerun 1 1 "--cases x" "1|PASS a;FAIL b"
# The L1 froze before its first report (CI, 2026-12-04: the retry itself
# died on an empty list, so the second L1 never ran).
scenario frozen-before-any-report 0 2 "--cases x" "125|" "0|PASS a;PASS b"
scenario frozen-after-two 0 2 "--cases x --skip a,b" "125|PASS a;PASS b" "0|PASS c"
scenario frozen-twice 0 3 "--cases x --skip a,b,c" "125|PASS a" "125|PASS b;PASS c" "0|PASS d"
scenario frozen-three-times 1 3 "--cases x --skip a" "125|PASS a" "125|" "125|"
scenario fail-before-freeze-counts 1 2 "--cases x --skip a,b" "125|PASS a;FAIL b" "0|PASS c"
scenario timeout-no-rerun 1 1 "--cases x" "124|PASS a"

if [[ $failures -ne 0 ]]; then
    echo "l1-retry-check: $failures scenario(s) FAILED"
    exit 1
fi
echo "l1-retry-check: every scenario behaved as expected"
