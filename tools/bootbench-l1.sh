#!/bin/bash
# bootbench-l1.sh: the measuring half of tools/bootbench. Runs where the VMs
# can boot: inside the nested L1 (tools/nested-run runs it there), or on a
# host with hardware virtualization. Starts every row N times, interleaved
# (row 1, row 2, ..., row 1, row 2, ...), each under vmmstat, and prints one
# line per start for tools/bootbench to collect:
#
#   BOOTBENCH-START <row> <i> <ok> <userspace_s> <exit_s> <status> <peak_rss_kb> <guest_uptime_s> <exits> <pages_2m> <overhead_kb>
#
# userspace_s: seconds from the start of the VMM / runtime process to the
# first KVMINI-USERSPACE-UP on its stdout (the guest's /init prints it as its
# first output; the containers' shell prints it as its first command);
# exit_s: seconds to that process's exit; peak_rss_kb: ru_maxrss from wait4,
# the largest peak RSS of that process and of any descendant it reaped (the
# VMM for VMs; runc or unshare and the container's processes otherwise);
# ok 1 when the start printed the marker and exited 0; exits: KVM's exit
# counter for the VM (debugfs, read every 250 ms while it runs, so the
# last 250 ms are missing); pages_2m: the most 2 MiB mappings of guest RAM
# KVM had at once; overhead_kb: the most RSS the VMM process had outside
# its guest RAM (mappings of 512 MiB or more), from /proc/PID/smaps. "-" for
# a missing value. Also BOOTBENCH-INFO <key> <text>, BOOTBENCH-SKIP <row>
# <reason> and, for kvmini rows, BOOTBENCH-REPORT <row> <i> <its --report json>.
#
# Rows:
#   kvmini-bzimage  kvmini run --kernel BZIMAGE --initrd I --exec true
#                   --report json (logged), its stderr (the guest console
#                   under --exec) joined to stdout for the marker
#   kvmini-pvh      the same with --boot pvh, after one unmeasured warm-up
#                   start that fills kvmini's unpacked-kernel cache
#   qemu-pc         qemu-system-x86_64 -accel kvm (default machine), same
#                   kernel and initrd, kvmini.bench=1 (marker, poweroff -f)
#   qemu-pvh        QEMU -M pc with the ELF vmlinux (--vmlinux) through its
#                   PVH note, same initrd and command line
#   qemu-microvm    the same as qemu-pc with -M microvm
#   lkvm            kvmtool (--lkvm PATH): lkvm run, the bzImage, same initrd;
#                   kvmtool gives the guest no ACPI, so the guest ends with
#                   kvmini.bench=reboot and reboot=k (the i8042 reset)
#   kvmini-rootfs   kvmini run --kernel BZIMAGE --rootfs / --exec true, no
#                   --initrd: the host's (L1's) root over virtio-fs, kvmini's
#                   own initramfs from --modules (a tree, or a tar of one)
#   qemu-9p-root    what vmtest does with QEMU: the host's root over
#                   virtio-9p (-virtfs local,path=/,mount_tag=/dev/root,
#                   security_model=none), its /bin/true run from it; with
#                   the tools/ initramfs, which loads Debian's modular 9p
#                   (kvmini.root9p=/dev/root: msize 512K, cache=loose, ro)
#   kvmini-rootfs-pvh, qemu-9p-root-pvh  the same two entered through PVH:
#                   kvmini --boot pvh, QEMU -M pc with the ELF (--vmlinux)
#   runc            runc run of the bundle tools/mkoci.sh builds
#   unshare         unshare --fork --pid --mount --uts --ipc --net chroot
#                   ROOTFS /bin/sh -c 'echo KVMINI-USERSPACE-UP; exec /bin/true'
#                   (the bundle's rootfs: the same busybox, no runtime)
# Every VM: 1 vCPU, 512 MiB, `console=ttyS0 quiet` (kvmini adds what --exec
# needs).
#
# usage: bootbench-l1.sh [-n N] [--rows "ROW ..."] [--mkoci PATH] [--busybox PATH]
#                        [--vmlinux PATH] [--lkvm PATH] [--modules TREE|TAR]
# environment: KVMINI, QEMU, VMMSTAT, GUEST_KERNEL, GUEST_INITRD (as L1 sets
#   them), RUNC, UNSHARE (default: found in PATH).
# Exit status: 0 when every start of every row was ok, 1 otherwise.
set -uo pipefail

LIB_PROG=bootbench-l1
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

n=10 rows="kvmini-bzimage kvmini-pvh qemu-pc qemu-pvh qemu-microvm runc unshare"
mkoci='' busybox=/bin/busybox modules=''
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-n needs a positive number"; n=$2; shift ;;
    --rows) [[ $# -ge 2 ]] || die "--rows needs a list"; rows=$2; shift ;;
    --mkoci) [[ $# -ge 2 ]] || die "--mkoci needs a path"; mkoci=$2; shift ;;
    --busybox) [[ $# -ge 2 ]] || die "--busybox needs a path"; busybox=$2; shift ;;
    --vmlinux) [[ $# -ge 2 ]] || die "--vmlinux needs a path"; VMLINUX=$2; shift ;;
    --lkvm) [[ $# -ge 2 ]] || die "--lkvm needs a path"; LKVM=$2; shift ;;
    --modules) [[ $# -ge 2 ]] || die "--modules needs a path"; modules=$2; shift ;;
    *) die "unknown argument '$1'" ;;
    esac
    shift
done
[[ -n $mkoci ]] || mkoci=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mkoci.sh
RUNC=${RUNC:-$(command -v runc || true)}
UNSHARE=${UNSHARE:-$(command -v unshare || true)}
[[ -x ${VMMSTAT:-} ]] || die "no vmmstat (VMMSTAT)"

work=$(mktemp -d "${TMPDIR:-/tmp}/bootbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cmdline="console=ttyS0 quiet"
marker=KVMINI-USERSPACE-UP

info() { echo "BOOTBENCH-INFO $1 $2"; }
# The module tree kvmini-rootfs gives kvmini (--modules).
if [[ -f $modules ]]; then
    mkdir -p "$work/modules"
    tar -xf "$modules" -C "$work/modules" && modules=$work/modules || modules=
fi
info kernel "$(uname -r)"
info cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) ($(grep -c ^processor /proc/cpuinfo) CPUs)"

# Why a row cannot run here, or nothing when it can.
row_missing() {
    case $1 in
    kvmini-*)
        [[ -x ${KVMINI:-} ]] || { echo "no kvmini binary"; return; }
        [[ $1 != kvmini-rootfs* || -d $modules ]] || { echo "no guest module tree (--modules)"; return; }
        "$KVMINI" run --help 2>&1 | grep -q -- '--exec' ||
            { echo "this kvmini has no 'run --exec' yet"; return; }
        [[ -c /dev/kvm ]] || echo "no /dev/kvm" ;;
    qemu-*)
        [[ -x ${QEMU:-} ]] || { echo "no qemu-system-x86_64 (QEMU)"; return; }
        [[ $1 != *-pvh || -s ${VMLINUX:-} ]] || { echo "no ELF vmlinux (--vmlinux)"; return; }
        [[ -c /dev/kvm ]] || echo "no /dev/kvm" ;;
    lkvm)
        [[ -x ${LKVM:-} ]] || { echo "no kvmtool binary (bootbench --lkvm PATH)"; return; }
        [[ -c /dev/kvm ]] || echo "no /dev/kvm" ;;
    runc)
        [[ -x $RUNC ]] || { echo "no runc"; return; }
        [[ -n ${bundle:-} ]] || echo "no OCI bundle ($oci_error)" ;;
    unshare)
        [[ -x $UNSHARE ]] || { echo "no unshare (util-linux)"; return; }
        [[ -n ${bundle:-} ]] || echo "no rootfs ($oci_error)" ;;
    *) echo "unknown row" ;;
    esac
}

# KVM's counters per VM (exits, 2 MiB mappings) are in debugfs.
if [[ ! -d /sys/kernel/debug/kvm ]]; then
    mount -t debugfs none /sys/kernel/debug 2>/dev/null || info note "could not mount debugfs: no exit counts"
fi
# runc needs a cgroup hierarchy; the L1's /init mounts none.
if [[ -d /sys/fs/cgroup ]] && ! grep -q ' /sys/fs/cgroup ' /proc/mounts; then
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || info note "could not mount cgroup2"
fi
# pivot_root cannot leave the initramfs (rootfs): there runc must chroot.
runc_args=()
if [[ $(awk '$2 == "/" { t = $3 } END { print t }' /proc/mounts) == rootfs ]]; then
    runc_args=(--no-pivot)
    info note "root is the initramfs: runc runs with --no-pivot (MS_MOVE + chroot)"
fi
bundle='' oci_error=''
if [[ -x $RUNC ]]; then
    bundle=$(bash "$mkoci" --busybox "$busybox" --out "$work/oci" 2> "$work/mkoci.err") ||
        { bundle=; oci_error=$(tail -n 1 "$work/mkoci.err"); }
    info runc "$("$RUNC" --version | head -n 1)"
fi
[[ -n ${QEMU:-} && -x ${QEMU:-} ]] && info qemu "$("$QEMU" --version | head -n 1)"
[[ -n ${GUEST_KERNEL_VERSION:-} ]] && info guest-kernel "$GUEST_KERNEL_VERSION"

active=()
for row in $rows; do
    why=$(row_missing "$row")
    if [[ -n $why ]]; then
        echo "BOOTBENCH-SKIP $row $why"
    else
        active+=("$row")
    fi
done
[[ ${#active[@]} -gt 0 ]] || die "no row can run here"

# Sets cmd (the command) and limit (timeout, s) for ROW's start I.
row_cmd() {
    local row=$1 i=$2
    limit=180
    case $row in
    qemu-9p-root|qemu-9p-root-pvh)
        local entry=qemu-pc
        [[ $row == *-pvh ]] && entry=qemu-pvh
        vmm_cmd "$entry" --cmdline "$cmdline kvmini.root9p=/dev/root" --share /:/dev/root ;;
    kvmini-*)
        if [[ $row == kvmini-rootfs* ]]; then
            # The host's root, kvmini's own initramfs: no --initrd.
            local entry=kvmini-bzimage
            [[ $row == *-pvh ]] && entry=kvmini-pvh
            vmm_cmd "$entry" --initrd '' --cmdline "$cmdline" -- --rootfs / --modules "$modules" \
                --timeout 170s --report "json:$work/$row.$i.json" --exec true
        else
            vmm_cmd "$row" --cmdline "$cmdline" -- --timeout 170s \
                --report "json:$work/$row.$i.json" --exec true
        fi
        # The kernel console joins stdout, where vmmstat looks for the marker.
        cmd=(sh -c "exec \"\$@\" 2>&1" sh "${cmd[@]}") ;;
    qemu-*)
        vmm_cmd "$row" --cmdline "$cmdline kvmini.bench=1" ;;
    lkvm)
        vmm_cmd lkvm --cmdline "$cmdline kvmini.bench=reboot reboot=k" ;;
    runc)
        limit=60
        cmd=("$RUNC" run ${runc_args[@]+"${runc_args[@]}"} --bundle "$bundle" "bootbench-$$-$i") ;;
    unshare)
        limit=60
        cmd=("$UNSHARE" --fork --pid --mount --uts --ipc --net
             chroot "$bundle/rootfs" /bin/sh -c "echo $marker; exec /bin/true") ;;
    esac
}

status_all=0
# --boot pvh unpacks the bzImage into kvmini's cache on its first use (tens
# of seconds in L1, once per machine): one unmeasured start first, so every
# measured start finds the cache warm as it would in use. Its time is shown.
if [[ " ${active[*]} " == *" kvmini-pvh "* || " ${active[*]} " == *" kvmini-rootfs-pvh "* ]]; then
    row_cmd kvmini-pvh 0
    : | "$VMMSTAT" --marker "$marker" --timeout "$limit" --out /dev/null -- "${cmd[@]}" 2> "$work/warmup.err"
    echo "bootbench-l1: kvmini-pvh warm-up start (fills the unpacked-kernel cache; not counted): $(grep '^vmmstat: ' "$work/warmup.err" | tail -n 1)"
    rm -f "$work/kvmini-pvh.0.json"
fi
echo "bootbench-l1: $n starts each of ${active[*]}, interleaved"
for ((i = 1; i <= n; i++)); do
    for row in "${active[@]}"; do
        row_cmd "$row" "$i"
        out=$work/$row.$i.out err=$work/$row.$i.err
        : | "$VMMSTAT" --marker "$marker" --timeout "$limit" --out "$out" --sample 250 \
            --guest-mem 512 -- "${cmd[@]}" 2> "$err"
        line=$(grep '^vmmstat: ' "$err" | tail -n 1)
        us=$(sed -n 's/.*marker_s=\([-0-9.]*\).*/\1/p' <<< "$line")
        ex=$(sed -n 's/.*exit_s=\([-0-9.]*\).*/\1/p' <<< "$line")
        st=$(sed -n 's/.*status=\([0-9]*\).*/\1/p' <<< "$line")
        rss=$(sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' <<< "$line")
        exits=$(sed -n 's/.*kvm_exits=\([0-9]*\).*/\1/p' <<< "$line")
        p2m=$(sed -n 's/.*kvm_pages_2m=\([0-9]*\).*/\1/p' <<< "$line")
        ovh=$(sed -n 's/.*overhead_kb=\([0-9]*\).*/\1/p' <<< "$line")
        up=$(tr -d '\r' < "$out" | sed -n 's/^KVMINI-UPTIME=\([0-9.]*\).*/\1/p' | head -n 1)
        if [[ $row == kvmini-* ]]; then
            # Under --exec the guest console goes to kvmini's stderr, which
            # row_cmd joins to stdout, so the marker is timed like the
            # other rows. kvmini's own userspace_up milestone (the /init's
            # control-port report, a few guest commands later) is logged,
            # and stands in only when the marker was not seen.
            [[ -n $us && $us != -* ]] || us=$(sed -n 's/.*"userspace_up":\([0-9.]*\).*/\1/p' "$work/$row.$i.json" 2>/dev/null)
            [[ -f $work/$row.$i.json ]] && echo "BOOTBENCH-REPORT $row $i $(cat "$work/$row.$i.json")"
            rm -f "$work/$row.$i.json"
        fi
        ok=1
        [[ ${st:-x} == 0 && -n $us && $us != -* && -n $ex ]] || ok=0
        [[ $us == -* ]] && us=
        echo "BOOTBENCH-START $row $i $ok ${us:--} ${ex:--} ${st:--} ${rss:--} ${up:--} ${exits:--} ${p2m:--} ${ovh:--}"
        if [[ $ok -eq 0 ]]; then
            status_all=1
            echo "bootbench-l1: $row #$i FAILED (${line:-no vmmstat line}); its stdout (last 15 lines) and stderr:"
            tr -d '\r' < "$out" | tail -n 15 | sed 's/^/    | /'
            grep -v '^vmmstat: ' "$err" | tail -n 10 | sed 's/^/    ! /'
        fi
        rm -f "$out" "$err"
    done
done
exit "$status_all"
