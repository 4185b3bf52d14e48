#!/bin/bash
# l1-retry.sh: run the e2e cases in an L1, and again in a new L1 when the
# emulated L1 itself failed before reporting them all.
#
# usage: tests/e2e/l1-retry.sh COMMAND [ARGS...]
#   COMMAND ARGS runs the cases in one L1 (run-nested.sh gives
#   tools/nested-run ... l1-cases.sh ...) and prints a line "PASS NAME ..."
#   or "FAIL NAME ..." per case. Its exit status 125 means the L1 ended
#   without reporting (frozen, wedged, panicked: tools/nested-run); then
#   COMMAND runs again with "--skip NAME,NAME..." appended, naming the
#   cases already reported, at most three times in all.
# environment: L1_RETRY_ATTEMPTS (default 3).
# Exit status: 0 every case ran and passed; 1 otherwise (said why).
#
# Why: the emulated L1 (QEMU TCG with nested SVM) sometimes freezes whole
# (its console and the cases' watchdog silent: CPU halted with its timer
# interrupt pending, or spinning with interrupts off), or wedges or panics.
# That says nothing about kvmini. A case an L1 reported (PASS or FAIL)
# counts as reported; the case running when it froze runs again; a failure
# that recurs in every attempt fails the suite.
set -uo pipefail

loud() { echo "E2E ENVIRONMENT ERROR: $*" >&2; echo "E2E ENVIRONMENT ERROR: $*"; }

[[ $# -ge 1 ]] || { echo "usage: l1-retry.sh COMMAND [ARGS...]" >&2; exit 2; }
attempts=${L1_RETRY_ATTEMPTS:-3}
[[ $attempts =~ ^[1-9]$ ]] || { echo "l1-retry.sh: L1_RETRY_ATTEMPTS must be 1 to 9" >&2; exit 2; }
attempt_log=$(mktemp "${TMPDIR:-/tmp}/e2e-attempt.XXXXXX")
trap 'rm -f "$attempt_log"' EXIT

reported=() earlier_fails=0 status=0
for ((attempt = 1; attempt <= attempts; attempt++)); do
    skip_args=()
    if [[ ${#reported[@]} -gt 0 ]]; then
        skip_args=(--skip "$(IFS=,; echo "${reported[*]}")")
    fi
    "$@" ${skip_args[@]+"${skip_args[@]}"} 2>&1 | tee "$attempt_log"
    status=${PIPESTATUS[0]}
    [[ $status -eq 125 && $attempt -lt $attempts ]] || break
    # Cases this L1 reported before it failed: not run again.
    now=()
    mapfile -t now < <(tr -d '\r' < "$attempt_log" | sed -nE 's/^(PASS|FAIL) ([A-Za-z0-9_-]+).*$/\2/p')
    fails=$(tr -d '\r' < "$attempt_log" | grep -c '^FAIL ')
    earlier_fails=$((earlier_fails + fails))
    last=none
    [[ ${#now[@]} -gt 0 ]] && last=${now[${#now[@]} - 1]}
    reported+=(${now[@]+"${now[@]}"})
    loud "the L1 machine failed before reporting (attempt $attempt of $attempts, see above; the last case it reported: $last); the ${#reported[@]} case(s) reported so far ($earlier_fails failed) stand, the rest run in a new L1"
done
if [[ $status -eq 0 && $earlier_fails -gt 0 ]]; then
    echo "e2e: $earlier_fails case(s) FAILED in an L1 that later failed (see above)"
    status=1
fi
case $status in
0) ;;
124) loud "the L1 run timed out: the cases did not all run; counted as a FAILURE" ;;
125) loud "the L1 did not report the cases' result in $attempts attempts; counted as a FAILURE" ;;
*) echo "e2e: some cases FAILED (status $status)" ;;
esac
[[ $status -eq 0 ]] || exit 1
exit 0
