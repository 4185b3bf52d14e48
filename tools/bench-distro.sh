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
# In L1, a watchdog line on L1's state every $BENCH_WATCH s (default 60).
# The emulated L1 itself sometimes freezes: the boot it was in is then
# reported as L1-LOST and a new L1 goes on with the next boot (see the end).
# Prints one DISTRO-BOOT line per boot, then a summary per VMM.
set -euo pipefail

LIB_PROG=bench-distro
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
n=10 on_host=0 in_l1=0 start=0
while [[ $# -gt 0 ]]; do
    case $1 in
    -n) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-n needs a count"; n=$2; shift ;;
    --here) on_host=1 ;;
    --in-l1) in_l1=1 ;;
    --start) start=$2; shift ;;
    -h|--help) sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
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

# Per VMM, from the DISTRO-BOOT lines of file $1: how many boots reached
# the login prompt and powered off with status 0, the median time to the
# prompt, and how many the emulated L1 lost (it froze during them).
summarize() {
    local v total ok med lost
    for v in kvmini qemu; do
        total=$(grep -c "^DISTRO-BOOT $v " "$1" || true)
        lost=$(grep "^DISTRO-BOOT $v " "$1" | grep -c ' L1-LOST' || true)
        grep "^DISTRO-BOOT $v " "$1" | grep ' status=0 ' | grep -v 'login_s=- ' |
            sed 's/.*login_s=\([0-9.]*\).*/\1/' > "$1.times-$v"
        ok=$(wc -l < "$1.times-$v")
        med=$(median < "$1.times-$v")
        echo "bench-distro: $v: $ok of $total boots reached the login prompt and powered off with status 0 (median time to the login prompt ${med} s); $lost lost with the emulated L1, which froze during them"
    done
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
    # A run in L1 that stalls past every per-boot bound says where.
    if [[ $in_l1 -eq 1 ]]; then
        l1_watch bench-distro-watch "${BENCH_WATCH:-60}"
        trap 'kill "$l1_watch_pid" 2>/dev/null' EXIT
    fi
    # The boots in order: kvmini 1, qemu 1, kvmini 2, ...; from position
    # $start (0-based), where an earlier L1 stopped.
    for ((p = start; p < 2 * n; p++)); do
        i=$((p / 2 + 1))
        if ((p % 2 == 0)); then
            boot_once kvmini "$i" "$w/kvmini-$i" "$KVMINI" run --kernel "$kern" --initrd "$initrd" \
                --disk "$disk,snapshot" --cpus 2 --memory 1G --cmdline "$cmdline"
        else
            boot_once qemu "$i" "$w/qemu-$i" "$QEMU" -accel kvm -M pc -cpu host,la57=off,svm=off,vmx=off \
                -smp 2 -m 1G -nodefaults -nographic -no-reboot -serial stdio \
                -kernel "$kern" -initrd "$initrd" -append "$cmdline" \
                -drive "file=$disk,if=none,id=d0,format=raw,snapshot=on" -device virtio-blk-pci,drive=d0
        fi
    done 2>&1 | tee "$w/results"
    [[ $on_host -eq 1 ]] && summarize "$w/results"
    exit 0
fi

# On the host: one L1 runs the boots; when the emulated L1 freezes or
# wedges (tools/nested-run stops it: --stall), the boot it was in is
# recorded as lost with the L1 and a new L1 goes on from the next one, at
# most BENCH_L1_TRIES (default 6) L1s in all.
img=$("$here/mkdistro.sh") || die "mkdistro.sh failed"
out=$(mktemp -d "${TMPDIR:-/tmp}/bench-distro.XXXXXX")
trap 'rm -rf "$out"' EXIT
: > "$out/results"
pos=0 tries=0
while ((pos < 2 * n && tries < ${BENCH_L1_TRIES:-6})); do
    tries=$((tries + 1))
    st=0
    "$here/nested-run" --with-qemu --smp 1 --stall "${BENCH_STALL:-240}" --log "$out/l1.log" \
        --timeout $(((2 * n - pos) * 420 + 300)) --disk "$img/root.img" \
        --bin "$(PATH=$PATH:/sbin:/usr/sbin command -v debugfs):/usr/bin/debugfs" \
        "${BASH_SOURCE[0]}" --in-l1 -n "$n" --start "$pos" || st=$?
    got=$(tr -d '\r' < "$out/l1.log" | grep -a '^DISTRO-BOOT ' || true)
    if [[ -n $got ]]; then
        echo "$got" >> "$out/results"
        pos=$((pos + $(echo "$got" | wc -l)))
    fi
    ((pos < 2 * n)) || break
    if [[ $st -eq 0 ]]; then
        echo "bench-distro: the L1 ended (status 0) before boot $((pos + 1)) of $((2 * n)): stopping" >&2
        break
    fi
    # The L1 stopped during boot $pos: that boot's outcome is the L1's.
    v=kvmini
    ((pos % 2)) && v=qemu
    echo "DISTRO-BOOT $v $((pos / 2 + 1)) L1-LOST (nested-run status $st: the emulated L1 froze or wedged during this boot)" |
        tee -a "$out/results"
    pos=$((pos + 1))
done
echo
echo "bench-distro: every outcome, in order ($tries L1 machines):"
cat "$out/results"
summarize "$out/results"
