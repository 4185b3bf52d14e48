#!/bin/bash
# soak.sh: back-to-back disposable VMs; checks that the VMM leaks nothing
# from one VM to the next, and prints the rate (VMs per minute).
#
# usage: tools/soak.sh [--vms N] [--minutes M] [--vmm kvmini|qemu]
#                      [--kvmini PATH] [--kernel K --initrd I] [--timeout SECS]
#                      [--no-devices]
#   --vms N        how many VMs, one after the other (default 10)
#   --minutes M    start no new VM after M minutes: "N VMs or as many as
#                  fit in M minutes" (the VMs done are counted and reported)
#   --vmm qemu     the same loop with QEMU (-accel kvm, same kernel,
#                  initramfs and devices), for comparison
#   --no-devices   no disk and no NIC (by default each VM gets a snapshot
#                  disk and a NIC on tap kvsoak0, which kvmini creates)
#   --timeout S    bound per VM (default 120)
# Each VM runs `true` and powers off: with kvmini's --exec when this kvmini
# has it, else with the initramfs's kvmini.bench=1 mode (tools/mkinitramfs.sh:
# /init powers off at once), which QEMU uses too.
#
# Run inside the nested L1 (GUEST_KERNEL/GUEST_INITRD/KVMINI/QEMU set by
# tools/nested-run; tests/e2e/cases-soak.sh does so for CI). From the host,
# it starts one L1 itself: tools/soak.sh [ARGS...] runs there
# (SOAK_L1_TIMEOUT bounds it, default 1500 s, or --minutes plus 10 min).
#
# While each VM runs, its process is sampled every 0.2 s: open file
# descriptors (/proc/PID/fd) and peak RSS (VmHWM). After each VM: files in
# $TMPDIR, network links (ip link) and leftover processes. Checked: every VM
# exited 0; the fd count, the temp files and the links never exceed those
# of the first VM (or of before it); the peak RSS of the last third of the
# VMs stays within 16 MiB of the first third's.
# Prints one line per VM and `SOAK-RESULT vmm=.. vms=N ok=N rate=R/min ...
# verdict=PASS|FAIL`. Exit status: 0 pass, 1 fail, 2 cannot run.
set -uo pipefail
LIB_PROG=soak
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vms=10 vmm_kind=kvmini kvmini=${KVMINI:-} kernel=${GUEST_KERNEL:-} initrd=${GUEST_INITRD:-}
per_vm_timeout=120 devices=1 minutes=0
args=() # the arguments for the copy of this script in L1, where KVMINI is set
while [[ $# -gt 0 ]]; do
    case $1 in
    --vms) vms=$2; args+=("$1" "$2"); shift ;;
    --minutes) minutes=$2; args+=("$1" "$2"); shift ;;
    --vmm) vmm_kind=$2; args+=("$1" "$2"); shift ;;
    --kvmini) kvmini=$2; shift ;;
    --kernel) kernel=$2; args+=("$1" "$2"); shift ;;
    --initrd) initrd=$2; args+=("$1" "$2"); shift ;;
    --timeout) per_vm_timeout=$2; args+=("$1" "$2"); shift ;;
    --no-devices) devices=0; args+=("$1") ;;
    -h|--help) sed -n '2,30s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "soak: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
[[ $vms =~ ^[1-9][0-9]*$ ]] || { echo "soak: --vms needs a positive number" >&2; exit 2; }
[[ $minutes =~ ^[0-9]+$ ]] || { echo "soak: --minutes needs a whole number" >&2; exit 2; }
[[ $vmm_kind == kvmini || $vmm_kind == qemu ]] || { echo "soak: --vmm kvmini|qemu" >&2; exit 2; }

# On the host: run this script in one nested L1.
if [[ -z ${GUEST_KERNEL:-} && -z $kernel ]]; then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    extra=()
    [[ $vmm_kind == qemu ]] && extra+=(--with-qemu)
    [[ -n $kvmini ]] && extra+=(--kvmini "$kvmini")
    # The L1 bound: the minutes asked for, plus the L1's boot and a last VM.
    l1_timeout=${SOAK_L1_TIMEOUT:-$((minutes > 0 ? minutes * 60 + 600 : 1500))}
    exec "$here/nested-run" --smp 1 --timeout "$l1_timeout" \
        ${extra[@]+"${extra[@]}"} "$here/soak.sh" ${args[@]+"${args[@]}"}
fi

tmpdir=${TMPDIR:-/tmp}
work=$(mktemp -d "$tmpdir/soak-work.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
tap=kvsoak0

[[ -f $kernel && -f $initrd ]] || { echo "soak: no guest kernel/initramfs ('$kernel', '$initrd')" >&2; exit 2; }
if [[ $vmm_kind == kvmini ]]; then
    [[ -x $kvmini ]] || { echo "soak: no kvmini ('$kvmini')" >&2; exit 2; }
else
    [[ -x ${QEMU:-} ]] || QEMU=$(command -v qemu-system-x86_64) ||
        { echo "soak: no QEMU (run the L1 with --with-qemu)" >&2; exit 2; }
fi

# A small raw disk (its content does not matter: the guest only probes it).
disk=$tmpdir/soak-disk.img
truncate -s 16M "$disk"
have_exec=0
[[ $vmm_kind == kvmini ]] && "$kvmini" run --help 2>&1 | grep -q -- '--exec' && have_exec=1

vm_cmd() {
    local cmdline="console=ttyS0 quiet panic=-1"
    local opts=(--kernel "$kernel" --initrd "$initrd" --memory 256M)
    [[ $devices -eq 1 ]] && opts+=(--disk "$disk" --snapshot --tap "$tap")
    if [[ $vmm_kind == qemu ]]; then
        # snapshot=on puts QEMU's overlay in /var/tmp (hard-coded in QEMU
        # 7.2), which L1 lacks.
        mkdir -p /var/tmp
        vmm_cmd qemu-pc "${opts[@]}" --cmdline "$cmdline kvmini.bench=1"
    elif [[ $have_exec -eq 1 ]]; then
        KVMINI=$kvmini vmm_cmd kvmini-bzimage "${opts[@]}" --cmdline "$cmdline" -- \
            --exec true --report json
    else
        KVMINI=$kvmini vmm_cmd kvmini-bzimage "${opts[@]}" --cmdline "$cmdline kvmini.bench=1"
    fi
}

links() { ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort | tr '\n' ' '; }
tmpcount() { find "$tmpdir" -mindepth 1 -maxdepth 1 ! -path "$work" ! -path "$disk" | wc -l; }

links0=$(links) tmp0=$(tmpcount)
echo "soak: $vms VMs$( ((minutes > 0)) && echo " or as many as fit in $minutes min") with $vmm_kind$([[ $have_exec -eq 1 ]] && echo ' (--exec true)' || echo ' (kvmini.bench=1: /init powers off at once)'),$([[ $devices -eq 1 ]] && echo " snapshot disk + NIC on tap $tap" || echo " no devices"); before: links [$links0], $tmp0 entries in $tmpdir"
ok=0 bad=0 fds_first= tmp_max=$tmp0 links_bad= rss_list=() fd_list=()
vm_cmd
echo "soak: command: ${cmd[*]}"
t_start=$(cut -d' ' -f1 /proc/uptime)
stop_at=$(( $(cut -d. -f1 /proc/uptime) + minutes * 60 ))
done_vms=0
for ((n = 1; n <= vms; n++)); do
    if ((minutes > 0 && $(cut -d. -f1 /proc/uptime) >= stop_at)); then
        echo "soak: $minutes min are up after $done_vms VMs: no new VM"
        break
    fi
    done_vms=$n
    "${cmd[@]}" < /dev/null > "$work/out" 2> "$work/err" &
    pid=$!
    fds=0 hwm=0 samples=0
    deadline=$(( $(cut -d. -f1 /proc/uptime) + per_vm_timeout ))
    while kill -0 "$pid" 2>/dev/null; do
        f=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
        ((f > fds)) && fds=$f
        h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        [[ -n $h ]] && ((h > hwm)) && hwm=$h
        samples=$((samples + 1))
        if (($(cut -d. -f1 /proc/uptime) > deadline)); then
            kill -9 "$pid" 2>/dev/null
            echo "soak: VM $n timed out after ${per_vm_timeout}s"
            break
        fi
        sleep 0.2
    done
    st=0
    wait "$pid" || st=$?
    # The report's peak RSS, when --report json gave one.
    rep=$(grep -o '"[a-z_]*rss[a-z_]*" *: *[0-9]*' "$work/out" 2>/dev/null | head -n 1 | grep -o '[0-9]*$')
    l=$(links) t=$(tmpcount)
    # (a /proc scan: L1's busybox has no pgrep; the bracket keeps grep
    # from finding its own command line)
    leftover=$(grep -l 'soak-disk[.]img' /proc/[0-9]*/cmdline 2>/dev/null | wc -l)
    echo "soak: vm $n/$vms status $st fds_max $fds rss_peak_kib $hwm${rep:+ report_rss $rep} samples $samples tmp $t links [$l] leftover_procs $leftover"
    if [[ $st -eq 0 ]]; then ok=$((ok + 1)); else bad=$((bad + 1)); tail -n 5 "$work/err" | sed 's/^/    | /'; fi
    [[ -z $fds_first ]] && fds_first=$fds
    fd_list+=("$fds") rss_list+=("$hwm")
    ((t > tmp_max)) && tmp_max=$t
    [[ $l != "$links0" ]] && links_bad="after VM $n: [$l]"
    ((leftover > 0)) && links_bad="${links_bad:+$links_bad; }a process still runs after VM $n"
done
t_end=$(cut -d' ' -f1 /proc/uptime)
rm -f "$disk"

secs=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.1f", b - a }')
vms=$done_vms
rate=$(awk -v n="$vms" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0) ? (n * 60 / s) : 0 }')
fd_max=$(printf '%s\n' "${fd_list[@]}" | sort -n | tail -n 1)
third=$(( (vms + 2) / 3 ))
rss_first=$(printf '%s\n' "${rss_list[@]:0:$third}" | sort -n | tail -n 1)
rss_last=$(printf '%s\n' "${rss_list[@]: -$third}" | sort -n | tail -n 1)
why=
((bad > 0)) && why+="$bad VMs did not exit 0; "
# A sample can miss the peak fd count (at the start or the end of a VM),
# so the check is that no VM exceeds the first one.
((fd_max > fds_first)) && why+="open fds grew: first VM $fds_first, max $fd_max; "
((rss_last > rss_first + 16384)) && why+="peak RSS grew: first third max ${rss_first} KiB, last third max ${rss_last} KiB; "
((tmp_max > tmp0)) && why+="files left in $tmpdir: $tmp0 before, $tmp_max after; "
[[ -n $links_bad ]] && why+="network links or processes left behind ($links_bad); "
verdict=PASS
[[ -n $why ]] && verdict=FAIL
echo "SOAK-RESULT vmm=$vmm_kind vms=$vms ok=$ok seconds=$secs rate=${rate}/min fds_first=$fds_first fds_max=$fd_max rss_kib_first_third=$rss_first rss_kib_last_third=$rss_last tmp_before=$tmp0 tmp_max=$tmp_max verdict=$verdict"
[[ -n $why ]] && echo "soak: FAIL: $why"
[[ $verdict == PASS ]]
