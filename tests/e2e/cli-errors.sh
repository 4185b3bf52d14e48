#!/bin/bash
# cli-errors.sh: kvmini's answers to bad inputs, on the host (no L1, no
# guest runs). Each case must exit 125 with exactly one line on stderr that
# names the problem (a keyword is checked), print nothing on stdout, leave
# nothing behind (its working folder and TMPDIR stay empty, no new network
# link: a tap it may have created is gone) and not touch its input files.
#
# The table (name: invocation -> what the one line must name):
#   missing-kernel, kernel-is-directory, random-kernel, truncated-bzimage
#   memory-0, memory-above-host (RAM + swap + 1 GiB), cpus-0,
#   cpus-above-limit (100000: above kvmini's 254 and KVM_CAP_MAX_VCPUS),
#   unknown-option, no-kernel, missing-initrd, initrd-is-directory,
#   initrd-not-cpio (cpio newc/odc and gzip, xz, lzma, bzip2, lzo, lz4,
#   zstd are accepted, anything else refused), disk-is-directory,
#   tap-name-too-long (16 characters; Linux allows 15); --net user:
#   passt-missing (no passt in $PATH: names the Debian package),
#   passt-bad-path (passt=PATH that does not exist), hostfwd-bad; kvmini's own
#   initramfs: modules-no-tree, modules-lacking (a tree without the
#   modules the machine needs), root-uuid (the init takes root=/dev/NAME),
#   rootfs-with-initrd, rootfs-with-root, overlay-bad; --share:
#   share-bad-tag, share-dup-tag, share-bad-option, share-missing,
#   share-is-file; exec-boot-bad, exec-boot-without-exec.
# Disk, tap and shared-folder problems are found when the VM's devices are built: before
# KVM is opened (so on any host), but after the host check, so those cases
# set KVMINI_ALLOW_NO_HW_VIRT=1 and --quiet
# (on hosts without VT-x/AMD-V, like this one, the check would answer first).
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
truncate -s 1M "$work/in/disk.img"
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

links() { ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | sort; }

# expect NAME KEYWORD-REGEX -- KVMINI-ARGS...   ($KVMINI_PATH: kvmini's $PATH)
expect() {
    local name=$1 regex=$2 st=0 lines links_before
    shift 3
    links_before=$(links)
    (cd "$work/cwd" && TMPDIR=$work/tmp timeout 30 env ${KVMINI_PATH:+PATH="$KVMINI_PATH"} "$kvmini" "$@" \
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
    elif [[ $(links) != "$links_before" ]]; then
        fail "$name" "the network links changed: $(diff <(echo "$links_before") <(links) | grep '^[<>]' | tr '\n' ' ')"
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
host_mib=$(awk '/^(MemTotal|SwapTotal):/ { kb += $2 } END { print int(kb / 1024) }' /proc/meminfo)
expect memory-above-host 'memory.*(host|RAM|swap)' -- \
    run --kernel "$real_kernel" --memory "$((host_mib + 1024))M"
expect cpus-0 'cpu' -- run --kernel "$real_kernel" --cpus 0
expect cpus-above-limit 'cpu' -- run --kernel "$real_kernel" --cpus 100000
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
expect initrd-is-directory 'directory' -- \
    run --kernel "$real_kernel" --initrd "$work/in/a-directory"
if [[ -n $kernel ]]; then
    # A kernel given as the initrd: no cpio and no compression magic.
    expect initrd-not-cpio 'initramfs|cpio' -- run --kernel "$real_kernel" --initrd "$kernel"
    printf '070701' > "$work/cpio-magic"
    KVMINI_ALLOW_NO_HW_VIRT=1 expect disk-is-directory 'directory' -- run --quiet \
        --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --disk "$work/in/a-directory"
    KVMINI_ALLOW_NO_HW_VIRT=1 expect tap-name-too-long 'tap|name' -- run --quiet \
        --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --net tap=kvmini-tap-16chr
    KVMINI_PATH=$work/in/a-directory KVMINI_ALLOW_NO_HW_VIRT=1 expect passt-missing 'apt-get install passt' -- \
        run --quiet --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --net user
    KVMINI_ALLOW_NO_HW_VIRT=1 expect passt-bad-path "passt binary '$work/in/no-passt'" -- run --quiet \
        --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --net "user,passt=$work/in/no-passt"
    # kvmini's own initramfs (no --initrd, root= named): the module tree.
    expect modules-no-tree 'no-such-tree' -- run --kernel "$real_kernel" --disk "$work/in/disk.img" \
        --cmdline root=/dev/vda --modules "$work/in/no-such-tree" --exec true
    expect modules-lacking 'virtio_pci.*a-directory' -- run --kernel "$real_kernel" \
        --disk "$work/in/disk.img" --cmdline root=/dev/vda --modules "$work/in/a-directory" --exec true
    expect root-uuid 'UUID=' -- run --kernel "$real_kernel" --disk "$work/in/disk.img" \
        --cmdline root=UUID=1234 --modules "$work/in/a-directory" --exec true
    expect rootfs-with-initrd 'drop --initrd' -- run --kernel "$real_kernel" --rootfs / \
        --initrd "$work/cpio-magic" --exec true
    expect rootfs-with-root 'drop root=/dev/vda' -- run --kernel "$real_kernel" --rootfs / \
        --cmdline root=/dev/vda --exec true
    expect exec-boot-bad "--exec-boot 'systemd': expected auto, direct or system" -- run --kernel "$real_kernel" \
        --cmdline root=/dev/vda --exec true --exec-boot systemd
    expect exec-boot-without-exec 'give --exec CMD' -- run --kernel "$real_kernel" \
        --cmdline root=/dev/vda --exec-boot system
    # --share: options at parse time, the folder when the device is built.
    expect share-bad-tag "tag 'a/b'" -- run --kernel "$real_kernel" --share "$work/in/a-directory:a/b"
    expect share-dup-tag "already" -- run --kernel "$real_kernel" --share "$work/in:x" \
        --share "$work/in/a-directory:x"
    expect share-bad-option "unknown option 'rx'" -- run --kernel "$real_kernel" --share "$work/in,rx"
    KVMINI_ALLOW_NO_HW_VIRT=1 expect share-missing 'no-such-dir.*No such file' -- run --quiet \
        --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --share "$work/in/no-such-dir"
    KVMINI_ALLOW_NO_HW_VIRT=1 expect share-is-file 'Not a directory' -- run --quiet \
        --kernel "$real_kernel" --initrd "$work/cpio-magic" --memory 256M --share "$work/in/random-4k.bin:r"
    expect overlay-bad 'overlay' -- run --kernel "$real_kernel" --cmdline root=/dev/vda --overlay /tmp
else
    fail initrd-not-cpio "no Debian kernel (tools/fetch-debian.sh failed)"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
