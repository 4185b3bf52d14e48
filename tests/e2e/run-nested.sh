#!/bin/bash
# run-nested.sh: the e2e suite. Boots ONE nested L1 (tools/nested-run) that
# runs every case of tests/e2e/l1-cases.sh against kvmini.
#
# usage: tests/e2e/run-nested.sh [--standin] [--distro] [KVMINI] [-- L1-CASES-ARGS...]
#   KVMINI      the kvmini to test (default $KVMINI, else build/kvmini)
#   --distro    build the Debian image (tools/mkdistro.sh, cached; needs
#               root) and give it to L1 as /dev/vda, for cases-distro.sh
#   --standin   test tests/e2e/qemu-as-kvmini (QEMU with kvmini's command
#               line) instead: checks this pipeline itself
# environment: E2E_TIMEOUT (whole L1 run, seconds, default 2400), E2E_L1_SMP (L1 CPUs, default 1),
#   E2E_CASE_TIMEOUT (per case, default 120), KVMINI_CACHE, KVMINI_ASAN (the
#   ASan+UBSan kvmini for the asan-boot case, default build-asan/kvmini),
#   FAULT_KILL_REPS (fault-kill9 boots, default 20), SOAK_VMS (default 10),
#   E2E_WATCH (seconds between the L1 watchdog's thread lists, default 300),
#   E2E_PULSE (seconds between its one-line pulses, default 60),
#   E2E_STALL (an L1 silent this long is frozen, default 3 * E2E_PULSE),
#   FSPROBE (tests/e2e/fsprobe.c's program, default build/tests/e2e/fsprobe).
# Exit status: 0 all cases passed; 1 a case failed or the cases could not
# run (never a pass); 77 (meson's skip) only when this machine cannot run
# the L1 at all (no qemu-system-x86_64).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

loud() { echo "E2E ENVIRONMENT ERROR: $*" >&2; echo "E2E ENVIRONMENT ERROR: $*"; }
# shellcheck source=../../tools/lib.sh
. "$repo/tools/lib.sh"   # guest_modules_tar

standin=0 distro=0 kvmini=${KVMINI:-}
case_args=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --standin) standin=1 ;;
    --distro) distro=1 ;;
    --) shift; case_args=("$@"); break ;;
    *) kvmini=$1 ;;
    esac
    shift
done
[[ -z $kvmini && -x $repo/build/kvmini ]] && kvmini=$repo/build/kvmini

if ! command -v qemu-system-x86_64 >/dev/null; then
    loud "qemu-system-x86_64 is not installed: the nested L1 cannot run (SKIP, not a pass)"
    exit 77
fi
if [[ $standin -eq 0 && ( -z $kvmini || ! -x $kvmini ) ]]; then
    loud "no kvmini executable ('$kvmini'): nothing to test; counted as a FAILURE"
    exit 1
fi
if ! env_lines=$("$repo/tools/fetch-debian.sh" --print-env); then
    loud "cannot fetch the Debian kernel (tools/fetch-debian.sh failed); counted as a FAILURE"
    exit 1
fi
eval "$env_lines"

# The ELF vmlinux unpacked from the bzImage by fetch-debian.sh (host-side,
# independently of kvmini's own unpacker), for the pvh-elf case.
vmlinux=${VMLINUX:-}
if [[ ! -s $vmlinux ]]; then
    loud "fetch-debian.sh gave no unpacked vmlinux ('$vmlinux'); counted as a FAILURE"
    exit 1
fi

# One L1 CPU: two-threaded TCG wedged L1 in about one run in three here;
# single-threaded has not (2-vCPU guests still run, their threads share it).
nested_args=(--timeout "${E2E_TIMEOUT:-2400}" --smp "${E2E_L1_SMP:-1}" --file "$vmlinux")
# The case files l1-cases.sh sources, the e2fsprogs tools the disk cases
# build and read images with, and jq, which parses --report json.
for f in "$here"/cases-*.sh "$repo/tools/guest-session.sh"; do
    nested_args+=(--file "$f")
done
for tool in mke2fs debugfs e2fsck jq; do
    path=$(PATH=$PATH:/sbin:/usr/sbin command -v "$tool") ||
        { loud "$tool is missing on this machine (tools/install-deps installs it); counted as a FAILURE"; exit 1; }
    nested_args+=(--bin "$path:/usr/bin/$tool")
done
# Fault cases (cases-faults.sh): device-mapper and loop modules of the L1
# kernel (insmod'ed by the case, not at L1 boot) and dmsetup, for a disk
# that returns EIO; the soak tool; and an ASan+UBSan kvmini for the
# asan-boot case ($KVMINI_ASAN, default build-asan/kvmini as tools/test
# builds it; without one that case fails, loudly).
# ext4 and what it needs, for the share on an ext4 file system (user
# xattrs: L1's tmpfs has none before Linux 6.6).
for m in drivers/md/dm-mod.ko drivers/block/loop.ko drivers/net/dummy.ko lib/crc16.ko \
         fs/mbcache.ko fs/jbd2/jbd2.ko crypto/crc32c_generic.ko fs/ext4/ext4.ko; do
    [[ -f ${MODULES_DIR:-}/kernel/$m ]] && nested_args+=(--file "$MODULES_DIR/kernel/$m")
done
if path=$(PATH=$PATH:/sbin:/usr/sbin command -v dmsetup); then
    nested_args+=(--bin "$path:/usr/sbin/dmsetup")
fi
nested_args+=(--file "$repo/tools/soak.sh" --file "$repo/tools/lib.sh")
# fsprobe (built by meson beside kvmini, tests/e2e/fsprobe.c) for the share
# cases; without it they fail, saying so.
fsprobe=${FSPROBE:-$repo/build/tests/e2e/fsprobe}
[[ -x $fsprobe ]] && nested_args+=(--file "$fsprobe")
# --net user (cases-net.sh): passt, and setpriv to run kvmini as a user
# who is not root; the L1 kernel's dummy module (above) gives passt the
# routable interface it insists on.
# (util-linux's setpriv goes first in L1's PATH: busybox has a smaller one.)
for tool in passt setpriv; do
    path=$(PATH=$PATH:/sbin:/usr/sbin command -v "$tool") ||
        { loud "$tool is missing on this machine (tools/install-deps installs it); counted as a FAILURE"; exit 1; }
    nested_args+=(--bin "$path:/usr/local/bin/$tool")
done
# FAULT_KILL_REPS, SOAK_VMS, E2E_WATCH and E2E_PULSE reach the cases in L1
# through a sourced file.
env_dir=$(mktemp -d "${TMPDIR:-/tmp}/e2e-env.XXXXXX")
trap 'rm -rf "$env_dir"' EXIT
for v in FAULT_KILL_REPS SOAK_VMS E2E_WATCH E2E_PULSE; do
    if [[ ${!v:-} =~ ^[0-9]+$ ]]; then echo "$v=${!v}"; fi
done > "$env_dir/e2e-env.sh"
nested_args+=(--file "$env_dir/e2e-env.sh")
# cases-init.sh: the guest kernel's modules that kvmini's own initramfs
# needs there, as they are in the package's tree (no depmod index), with
# virtio_blk and ext4 xz-compressed to cover that path.
guest_modules_tar "$env_dir/guest-modules.tar" virtio_blk ext4 ||
    { loud "cannot stage the guest kernel's modules from $MODULES_DIR; counted as a FAILURE"; exit 1; }
nested_args+=(--file "$env_dir/guest-modules.tar")
if [[ $distro -eq 1 ]]; then
    if ! distro_dir=$(KVMINI_CACHE=${KVMINI_CACHE:-$repo/.cache} "$repo/tools/mkdistro.sh"); then
        loud "tools/mkdistro.sh could not build the Debian image (it needs root and apt's Debian mirror; see above); counted as a FAILURE"
        exit 1
    fi
    nested_args+=(--disk "$distro_dir/root.img")
fi
kvmini_asan=${KVMINI_ASAN:-$repo/build-asan/kvmini}
if [[ $standin -eq 0 && -x $kvmini_asan ]]; then
    nested_args+=(--bin "$kvmini_asan:/usr/bin/kvmini-asan")
fi
if [[ $standin -eq 1 ]]; then
    nested_args+=(--with-qemu --no-kvmini --file "$here/qemu-as-kvmini")
    case_args=(--vmm /payload/files/qemu-as-kvmini ${case_args[@]+"${case_args[@]}"})
    echo "e2e: testing the QEMU STAND-IN, not kvmini"
else
    nested_args+=(--kvmini "$kvmini")
fi
case_args=(--case-timeout "${E2E_CASE_TIMEOUT:-120}" ${case_args[@]+"${case_args[@]}"})
# The emulated L1 itself sometimes fails (freezes whole, wedges, panics):
# l1-retry.sh runs the cases it had not reported again in a new L1. A
# frozen L1 is one whose console, and with it the cases' watchdog (a line
# pulse every E2E_PULSE s), has been silent for E2E_STALL s: three pulses,
# so that a freeze costs minutes, not the suite's time bound.
stall=${E2E_STALL:-$((${E2E_PULSE:-60} * 3))}
nested_args+=(--stall "$stall")
set +e
"$here/l1-retry.sh" "$repo/tools/nested-run" "${nested_args[@]}" "$here/l1-cases.sh" \
    ${case_args[@]+"${case_args[@]}"}
status=$?
set -e
exit "$status"
