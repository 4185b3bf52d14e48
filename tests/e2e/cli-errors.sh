#!/bin/bash
# cli-errors.sh: kvmini's answers to bad inputs, on the host (no L1, no
# guest runs). Each case must exit 125 with exactly one line on stderr that
# names the problem (a keyword is checked), print nothing on stdout, leave
# nothing behind (its working folder and TMPDIR stay empty) and not touch
# its input files.
#
# usage: tests/e2e/cli-errors.sh [KVMINI]   (default $KVMINI, else build/kvmini)
# Prints `PASS name` / `FAIL name: reason` per case and `N passed, M failed`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
kvmini=${1:-${KVMINI:-$repo/build/kvmini}}
if [[ ! -x $kvmini ]]; then
    echo "CLI-ERRORS ENVIRONMENT ERROR: no kvmini executable at '$kvmini'; counted as a FAILURE"
    exit 1
fi
kvmini=$(cd "$(dirname "$kvmini")" && pwd)/$(basename "$kvmini")

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in/a-directory" "$work/cwd" "$work/tmp"
head -c 4096 /dev/urandom > "$work/in/random-4k.bin"
kernel=
if env_lines=$("$repo/tools/fetch-debian.sh" --print-env 2>/dev/null); then
    eval "$env_lines"
    kernel=${KERNEL:?}
    head -c 8192 "$KERNEL" > "$work/in/truncated-bzImage"
fi
good_initrd=$work/in/initrd.cpio
printf 'not really a cpio\n' > "$good_initrd"
inputs_sum=$(cd "$work/in" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)

passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# expect NAME KEYWORD-REGEX -- KVMINI-ARGS...
expect() {
    local name=$1 regex=$2 st=0 lines
    shift 3
    (cd "$work/cwd" && TMPDIR=$work/tmp timeout 30 "$kvmini" "$@" \
        < /dev/null > "$work/out" 2> "$work/err") || st=$?
    lines=$(wc -l < "$work/err")
    if [[ $st -ne 125 ]]; then
        fail "$name" "exit status $st, expected 125 (stderr: $(head -c 300 "$work/err" | tr '\n' '|'))"
    elif [[ $lines -ne 1 ]]; then
        fail "$name" "stderr has $lines lines, expected one: $(head -c 300 "$work/err" | tr '\n' '|')"
    elif ! grep -Eiq -- "$regex" "$work/err"; then
        fail "$name" "message does not name the problem (want /$regex/): $(cat "$work/err")"
    elif [[ -s $work/out ]]; then
        fail "$name" "printed on stdout: $(head -c 200 "$work/out" | tr '\n' '|')"
    elif [[ -n $(find "$work/cwd" "$work/tmp" -mindepth 1) ]]; then
        fail "$name" "left files behind: $(find "$work/cwd" "$work/tmp" -mindepth 1 | tr '\n' ' ')"
    elif [[ $(cd "$work/in" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) != "$inputs_sum" ]]; then
        fail "$name" "changed its input files"
    else
        pass "$name"
        echo "    ($(cat "$work/err"))"
    fi
    rm -rf "${work:?}/cwd/"* "${work:?}/tmp/"* "$work/out" "$work/err"
}

expect missing-kernel 'no such file|not found|does not exist|cannot open|can.t open' -- \
    run --kernel "$work/in/no-such-kernel" --memory 512M
expect kernel-is-directory 'directory' -- \
    run --kernel "$work/in/a-directory" --memory 512M
expect random-kernel 'bzimage|elf|format|magic|header|kernel' -- \
    run --kernel "$work/in/random-4k.bin" --memory 512M
if [[ -n $kernel ]]; then
    expect truncated-bzimage 'truncat|short|small|size|beyond|past|exceed|end of|incomplete|payload' -- \
        run --kernel "$work/in/truncated-bzImage" --memory 512M
else
    fail truncated-bzimage "no Debian kernel to truncate (tools/fetch-debian.sh failed)"
fi
real_kernel=${kernel:-$work/in/random-4k.bin}
expect memory-0 'memory' -- run --kernel "$real_kernel" --memory 0
expect cpus-0 'cpu' -- run --kernel "$real_kernel" --cpus 0
expect unknown-option 'frobnicate' -- run --kernel "$real_kernel" --frobnicate
expect no-kernel 'kernel' -- run --memory 512M
expect missing-initrd 'initrd|no such file|not found' -- \
    run --kernel "$real_kernel" --initrd "$work/in/no-such-initrd"
# --exec / --timeout / --report (disposable VMs).
expect exec-no-initrd 'initrd' -- run --kernel "$real_kernel" --exec 'true'
expect exec-empty 'exec' -- run --kernel "$real_kernel" --initrd "$good_initrd" --exec ''
expect timeout-0 'timeout' -- run --kernel "$real_kernel" --timeout 0
expect timeout-junk 'timeout' -- run --kernel "$real_kernel" --timeout 5x
expect timeout-fraction 'timeout' -- run --kernel "$real_kernel" --timeout 1.5s
expect timeout-overflow 'timeout' -- run --kernel "$real_kernel" --timeout 99999999999999999999h
expect report-format 'report' -- run --kernel "$real_kernel" --report xml

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
