#!/bin/bash
# bench-distro.sh: boot the Debian image of tools/mkdistro.sh N times with
# kvmini and N times with QEMU, interleaved, in one nested L1 (or, with
# --here, on this host when its KVM has VT-x/AMD-V), and report every
# outcome: the time to the login prompt on ttyS0, systemd-analyze's line,
# the failed units, the kernel's WARNING/BUG lines, and how the VMM ended
# after `poweroff` (status, seconds). Both VMMs get the same kernel, initrd,
# command line ('console=ttyS0 root=/dev/vda rw'), 2 vCPUs, 1 GiB and a
# virtio-blk disk over PCI; QEMU runs -accel kvm -M pc with the CPU model
# kvmini's --cpu default gives (host minus LA57, VMX, SVM). Each boot gets
# a fresh copy-on-write view of the image (kvmini ,snapshot; QEMU
# snapshot=on), so every boot starts from the same state.
#
# usage: tools/bench-distro.sh [-n N] [--here]   (default N=10)
# Prints one DISTRO-BOOT line per boot, then a summary per VMM.
set -euo pipefail

LIB_PROG=bench-distro
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=10 on_host=0 in_l1=0
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-n needs a count"; n=$2; shift ;;
    --here) on_host=1 ;;
    --in-l1) in_l1=1 ;;
    -h|--help) sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

# One boot: VMM command in "$@", console to $1 (a folder). Sets the
# DISTRO-BOOT fields.
boot_once() {
    local vmm=$1 i=$2 d=$3 t0 t_login=- st=- t_end analyze nfail nwarn
    shift 3
    mkdir -p "$d"
    rm -f "$d/in"
    mkfifo "$d/in"
    t0=$(date +%s.%N)
    timeout -k 5 400 "$@" < "$d/in" > "$d/out" 2> "$d/err" &
    local pid=$!
    exec 6> "$d/in"
    local w=0
    while kill -0 "$pid" 2>/dev/null && ! tr -d '\r' < "$d/out" | grep -qa ' login: '; do
        sleep 0.2
        w=$((w + 1))
        ((w < 1800)) || break
    done
    if tr -d '\r' < "$d/out" | grep -qa ' login: '; then
        t_login=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        printf 'root\n' >&6
        sleep 3
        # shellcheck disable=SC2016  # the guest's shell expands these
        printf '%s\n' 'echo ANALYZE=$(systemd-analyze | head -n 1)' \
            'echo NFAILED=$(systemctl --failed --no-legend --plain | wc -l) $(systemctl --failed --no-legend --plain | cut -d" " -f1)' \
            'echo NWARN=$(dmesg | grep -cE "WARNING:|BUG:") $(dmesg | grep -E "WARNING:|BUG:" | head -n 2 | tr -s " " | cut -c1-120)' \
            'poweroff' >&6
    fi
    exec 6>&-
    wait "$pid" && st=0 || st=$?
    t_end=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    # No CRs, no terminal control sequences (bash's bracketed paste).
    tr -d '\r' < "$d/out" | sed "s/"$'\033'"\\[[0-9;?]*[a-zA-Z]//g" > "$d/txt"
    analyze=$(grep -a '^ANALYZE=' "$d/txt" | tail -n 1 | cut -d= -f2- | sed 's/Startup finished in //' || true)
    nfail=$(grep -a '^NFAILED=' "$d/txt" | tail -n 1 | cut -d= -f2- || true)
    nwarn=$(grep -a '^NWARN=' "$d/txt" | tail -n 1 | cut -d= -f2- || true)
    echo "DISTRO-BOOT $vmm $i login_s=$t_login status=$st end_s=$t_end failed=[${nfail:-?}] warn=[${nwarn:-?}] analyze=[${analyze:-none}]"
    if [[ $t_login == - ]]; then
        echo "    $vmm $i: no login prompt; console tail:"
        tail -n 12 "$d/txt" | sed 's/^/    | /'
        echo "    $vmm $i: its stderr:"
        tail -n 8 "$d/err" | sed 's/^/    | /'
    fi
}

if [[ $in_l1 -eq 1 || $on_host -eq 1 ]]; then
    disk=/dev/vda
    # QEMU puts a snapshot=on drive's overlay in /var/tmp, whatever TMPDIR says.
    mkdir -p /var/tmp
    w=${TMPDIR:-/tmp}/bench-distro
    mkdir -p "$w"
    if [[ $on_host -eq 1 ]]; then
        img=$("$here/mkdistro.sh") || die "mkdistro.sh failed"
        disk=$img/root.img; kern=$img/vmlinuz; initrd=$img/initrd.img
        KVMINI=${KVMINI:-$here/../build/kvmini} QEMU=${QEMU:-qemu-system-x86_64}
    else
        ver=$(debugfs -R "ls -p /boot" /dev/vda 2>/dev/null | tr '/' '\n' | sed -n 's/^vmlinuz-//p' | head -n 1)
        [[ -n $ver ]] || die "no /boot/vmlinuz-* on /dev/vda"
        debugfs -R "dump /boot/vmlinuz-$ver $w/vmlinuz" /dev/vda 2>/dev/null
        debugfs -R "dump /boot/initrd.img-$ver $w/initrd.img" /dev/vda 2>/dev/null
        kern=$w/vmlinuz initrd=$w/initrd.img
    fi
    cmdline='console=ttyS0 root=/dev/vda rw'
    echo "bench-distro: $n boots each, interleaved; kernel $(basename "$kern"), cmdline '$cmdline'"
    for i in $(seq 1 "$n"); do
        boot_once kvmini "$i" "$w/kvmini-$i" "$KVMINI" run --kernel "$kern" --initrd "$initrd" \
            --disk "$disk,snapshot" --cpus 2 --memory 1G --cmdline "$cmdline"
        boot_once qemu "$i" "$w/qemu-$i" "$QEMU" -accel kvm -M pc -cpu host,la57=off,svm=off,vmx=off \
            -smp 2 -m 1G -nodefaults -nographic -no-reboot -serial stdio \
            -kernel "$kern" -initrd "$initrd" -append "$cmdline" \
            -drive "file=$disk,if=none,id=d0,format=raw,snapshot=on" -device virtio-blk-pci,drive=d0
    done 2>&1 | tee "$w/results"
    for v in kvmini qemu; do
        total=$(grep -c "^DISTRO-BOOT $v " "$w/results" || true)
        grep "^DISTRO-BOOT $v " "$w/results" | grep ' status=0 ' | grep -v 'login_s=- ' |
            sed 's/.*login_s=\([0-9.]*\).*/\1/' | sort -n > "$w/times-$v"
        ok=$(wc -l < "$w/times-$v")
        med=$(awk '{ t[NR] = $1 } END { if (NR) print (NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2); else print "-" }' "$w/times-$v")
        echo "bench-distro: $v: $ok of $total boots reached the login prompt and powered off with status 0; median time to the login prompt ${med} s"
    done
    exit 0
fi

img=$("$here/mkdistro.sh") || die "mkdistro.sh failed"
exec "$here/nested-run" --with-qemu --smp 1 --timeout $((n * 2 * 300 + 300)) --disk "$img/root.img" \
    --bin "$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs):/usr/bin/debugfs" \
    "${BASH_SOURCE[0]}" --in-l1 -n "$n"
