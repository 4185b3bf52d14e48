#!/bin/bash
# bench-io.sh: virtio-blk and virtio-net throughput of kvmini next to QEMU,
# in ONE nested L1 (tools/nested-run --with-qemu), same guest kernel and
# initramfs, 1 vCPU, 1 GiB, each VMM in turn:
#   disk: a 300 MiB raw image on L1's tmpfs; in the guest, busybox dd of
#         256 MiB with direct I/O, write (from /dev/zero) then read, R times;
#   net:  a tap link (198.18.0.0/24); 64 MiB host->guest (guest wget from
#         L1's busybox httpd, timed in the guest) and guest->host (L1 wget
#         from the guest's httpd, timed in L1), R times.
#   kvmini: --disk IMG --net tap=ktap0           (virtio-pci)
#   qemu:   -drive if=none,format=raw,cache=writeback + virtio-blk-pci,
#           -netdev tap (vhost off: L1 has no vhost-net) + virtio-net-pci
# and the user-mode networks (no disk), the same 64 MiB each way, the
# guest 10.0.2.15 by DHCP, L1's loopback at 10.0.2.2 (a dummy interface
# gives L1 the address and default route passt copies), guest->host
# through a host forward 127.0.0.1:18080 -> guest 8080:
#   kvmini-user: --net user (kvmini's passt, MTU 65520)
#   qemu-passt:  -netdev stream to a passt of its own on a UNIX socket,
#                virtio-net-pci host_mtu=65520 (passt's MTU, as kvmini)
#   qemu-slirp:  -netdev user (QEMU's built-in slirp, MTU 1500)
# Prints each figure's median in MiB/s and kvmini's ratio to QEMU (for
# user mode: to the better QEMU figure), and per MiB moved KVM's exit
# counters, the VMM's CPU time and, counted in the guest, the NIC's
# packets each way and its receive and transmit interrupts.
#
# usage: tools/bench-io.sh [-r REPEATS] [--rows "ROW..."] [--base KVMINI]
#                          [--log FILE]
#   (default R=3, every row but the base ones). Rows: kvmini qemu (disk and
#   tap), kvmini-user qemu-passt qemu-slirp (user mode), kvmini-base and
#   kvmini-base-user: another kvmini build (--base; say, main before a
#   change) in the same L1, for a before/after that compares like with
#   like. Inside L1, tools/nested-run runs it as: bench-io.sh --in-l1 R ROWS
set -euo pipefail

LIB_PROG=bench-io
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- inside L1 -------------------------------------------------------
guest_cmdline="console=ttyS0 quiet panic=-1"


now() { date +%s.%N; }
# A line as each step ends, with L1's uptime: a stuck step shows itself.
progress() { echo "    [$(cut -d' ' -f1 /proc/uptime)] $*"; }
mibps() { awk -v mib="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) print "-"; else printf "%.1f\n", mib / d }'; }

# kvm_snap, kvm_record (tools/lib.sh) write here.
KVM_COUNTERS=/tmp/bench-io/counters

# kvm_snap and the CPU time of the passt processes (passt_ms; the user-mode
# rows' network stack runs there, outside the VMM).
io_snap() {
    local p
    echo "$(kvm_snap) $(for p in $(procs_named passt); do stat_fields "/proc/$p/stat"; done |
        awk '{ t += $12 + $13 } END { printf "passt_ms=%d", t * 10 }')"
}

# In the guest: t (its uptime), rate MIB A B (MiB/s between two t's) and
# nicc (eth0's counters as kvm_snap's KEY=VALUE: packets each way and the
# interrupts of its receive and transmit queues, as the guest counts
# them, so the same for every VMM; one vCPU: /proc/interrupts' column 2).
send_timing_helpers() {
    session_send 't() { cut -d" " -f1 /proc/uptime; }\n'
    session_send 'rate() { awk -v m=$1 -v a=$2 -v b=$3 "BEGIN { printf \\"%.1f\\", m / (b - a) }"; }\n'
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'nicc() { s=/sys/class/net/eth0/statistics; echo rx_pkts=$(cat $s/rx_packets) tx_pkts=$(cat $s/tx_packets) $(awk "/-input/ { r += \\$2 } /-output/ { x += \\$2 } END { printf \\"rx_irqs=%d tx_irqs=%d\\", r, x }" /proc/interrupts); }\n'
}

# Once the guest's H2G rounds are done it serves 64 MiB (its httpd on
# 8080); L1 fetches it from URL REPS times, timed (G2Hn in $dir/host);
# then the guest powers off. ROW REPS URL.
g2h_rounds() {
    local row=$1 reps=$2 url=$3 r t0 t1 k0 k1
    session_expect "^NC_H2G1=" ||
        { echo "bench-io: $row: the guest did not finish its downloads"; session_send 'poweroff -f\n'; session_end; return 1; }
    # The host's counters and the guest's NIC counts, as one record.
    kvm_record "$row" H2G $((64 * reps)) "$h2g_snap $(session_value NC_H2G0)" "$(io_snap) $(session_value NC_H2G1)"
    progress "$row: host->guest done"
    session_send 'mkdir -p /www; dd if=/dev/zero of=/www/g2h bs=1M count=64 2>/dev/null; httpd -p 8080 -h /www && echo HTTPD=up\n'
    session_expect '^HTTPD=up' ||
        { echo "bench-io: $row: the guest's httpd did not start"; session_send 'poweroff -f\n'; session_end; return 1; }
    session_send 'echo NC_G2H0=$(nicc)\n'
    session_expect '^NC_G2H0=' ||
        { echo "bench-io: $row: the guest did not answer"; session_send 'poweroff -f\n'; session_end; return 1; }
    k0=$(io_snap)
    for ((r = 1; r <= reps; r++)); do
        t0=$(now)
        if timeout 120 wget -q -O /dev/null "$url"; then
            t1=$(now)
            echo "G2H$r=$(mibps 64 "$t0" "$t1")" >> "$dir/host"
            progress "$row: guest->host round $r done"
        else
            echo "bench-io: $row: guest->host wget failed"
            echo "G2H$r=-" >> "$dir/host"
        fi
    done
    k1=$(io_snap)
    session_send 'echo NC_G2H1=$(nicc)\n'
    session_expect '^NC_G2H1=' || echo "bench-io: $row: no NIC counts after the uploads"
    kvm_record "$row" G2H $((64 * reps)) "$k0 $(session_value NC_G2H0)" "$k1 $(session_value NC_G2H1)"
    session_send 'poweroff -f\n'
    session_end
}

# The guest's H2G rounds: downloads from URL, timed in the guest; the
# counters before them go to h2g_snap (g2h_rounds records them).
h2g_rounds() { # REPS URL
    local r
    h2g_snap=$(io_snap)
    session_send 'echo NC_H2G0=$(nicc)\n'
    for ((r = 1; r <= $1; r++)); do
        # shellcheck disable=SC2016  # expanded by the guest's shell
        session_send 'a=$(t); if timeout 120 wget -q -O /dev/null '"$2"'; then b=$(t); echo H2G'"$r"'=$(rate 64 $a $b); else echo H2G'"$r"'=-; fi\n'
    done
    session_send 'echo NC_H2G1=$(nicc)\n'
}

# The kvmini build a row runs: the base rows run --base's.
row_kvmini() { [[ $1 == kvmini-base* ]] && echo /usr/local/bin/kvmini-base || echo "$KVMINI"; }

run_row() { # ROW REPEATS
    local row=$1 reps=$2 img=/tmp/bench-io/$1.img tap=${1:0:1}tap0 r n k0 k1
    truncate -s 300M "$img"
    # shellcheck disable=SC2154  # cmd: set by vmm_cmd
    KVMINI=$(row_kvmini "$row") vmm_cmd "$([[ $row == kvmini* ]] && echo kvmini-bzimage || echo qemu-pc)" \
        --cmdline "$guest_cmdline" --memory 1G --disk "$img" --tap "$tap"
    session_start "/tmp/bench-io/$row" "${cmd[@]}"
    n=0
    until ip link show "$tap" >/dev/null 2>&1 || ((n++ > 600)); do sleep 0.1; done
    ip addr add 198.18.0.1/24 dev "$tap" && ip link set "$tap" up ||
        { echo "bench-io: $row: no tap $tap appeared"; session_end; return 1; }
    session_prompt || { echo "bench-io: $row: no shell prompt"; session_end; return 1; }
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'ip addr add 198.18.0.2/24 dev eth0; ip link set eth0 up; ip link set lo up\n'
    send_timing_helpers
    k0=$(io_snap)
    for ((r = 1; r <= reps; r++)); do
        # shellcheck disable=SC2016
        session_send 'a=$(t); dd if=/dev/zero of=/dev/vda bs=1M count=256 oflag=direct 2>/dev/null; b=$(t); echo WRITE'"$r"'=$(rate 256 $a $b)\n'
    done
    session_expect "^WRITE$reps=" || { echo "bench-io: $row: the guest's disk writes did not finish"; session_end; return 1; }
    k1=$(io_snap)
    kvm_record "$row" WRITE $((256 * reps)) "$k0" "$k1"
    progress "$row: disk writes done"
    for ((r = 1; r <= reps; r++)); do
        # shellcheck disable=SC2016
        session_send 'a=$(t); dd if=/dev/vda of=/dev/null bs=1M count=256 iflag=direct 2>/dev/null; b=$(t); echo READ'"$r"'=$(rate 256 $a $b)\n'
    done
    session_expect "^READ$reps=" || { echo "bench-io: $row: the guest's disk reads did not finish"; session_end; return 1; }
    kvm_record "$row" READ $((256 * reps)) "$k1" "$(io_snap)"
    h2g_rounds "$reps" http://198.18.0.1:8080/h2g
    g2h_rounds "$row" "$reps" http://198.18.0.2:8080/g2h || return 1
    record_results "$row" "$reps" WRITE READ H2G G2H
    rm -f "$img"
}

# The row's figures (FIGn=... of the console and of $dir/host) as
# "ROW FIG VALUE" lines of /tmp/bench-io/results. ROW REPS FIG...
record_results() {
    local row=$1 reps=$2 fig r
    shift 2
    cat "$dir/host" >> "$dir/txt"
    for fig in "$@"; do
        for ((r = 1; r <= reps; r++)); do
            echo "$row $fig $(session_value "$fig$r")"
        done
    done >> /tmp/bench-io/results
}

# What a failed row printed last.
report_failure() { # ROW
    echo "bench-io: $1 FAILED; its console:"
    tail -n 30 "$dir/txt" | sed 's/^/    | /'
    tail -n 10 "$dir/err" | sed 's/^/    ! /'
}

# The user-mode rows (see the header): ROW REPEATS.
user_fwd=tcp:127.0.0.1:18080-:8080
run_user_row() {
    local row=$1 reps=$2 n st=0 sock=/tmp/bench-io/passt/sock passt_pid=
    dir=/tmp/bench-io/$row
    case $row in
    kvmini-user|kvmini-base-user)
        KVMINI=$(row_kvmini "$row") vmm_cmd kvmini-bzimage --cmdline "$guest_cmdline" --memory 1G --user-net "$user_fwd" ;;
    qemu-slirp) vmm_cmd qemu-pc --cmdline "$guest_cmdline" --memory 1G --user-net "$user_fwd" ;;
    qemu-passt)
        # passt started by root binds its socket as "nobody": a directory
        # it may write to (else its bind fails and it says nothing).
        mkdir -p "${sock%/*}" && chmod 1777 "${sock%/*}" && rm -f "$sock"
        passt -f -q -1 --socket "$sock" --mtu 65520 -t 127.0.0.1/18080:8080 2>"$dir.passt.err" &
        passt_pid=$!
        n=0
        until [[ -S $sock ]] || ((n++ > 100)); do sleep 0.1; done
        [[ -S $sock ]] || { echo "bench-io: $row: passt made no socket $sock:"; sed 's/^/    ! /' "$dir.passt.err"; kill "$passt_pid"; return 1; }
        vmm_cmd qemu-pc --cmdline "$guest_cmdline" --memory 1G --stream-net "$sock" ;;
    esac
    session_start "$dir" "${cmd[@]}"
    session_prompt || { echo "bench-io: $row: no shell prompt"; session_end; [[ -z $passt_pid ]] || kill "$passt_pid" 2>/dev/null; return 1; }
    send_timing_helpers
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'echo ADDR=$(ip -4 addr show eth0 | awk "/inet / {print \$2}") MTU=$(cat /sys/class/net/eth0/mtu)\n'
    h2g_rounds "$reps" http://10.0.2.2:8080/h2g
    g2h_rounds "$row" "$reps" http://127.0.0.1:18080/g2h || st=1
    [[ -z $passt_pid ]] || { kill "$passt_pid" 2>/dev/null; wait "$passt_pid" 2>/dev/null; }
    [[ $st -eq 0 ]] || return 1
    echo "    ($row: guest $(session_value ADDR))"
    grep -h 'warning' "$dir/err" 2>/dev/null | head -n 3 | sed 's/^/    ! /'
    record_results "$row" "$reps" H2G G2H
}

in_l1() {
    local reps=$1 rows=$2 row fig k q b
    # shellcheck disable=SC1091
    source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
    session_timeout=900
    [[ -x ${KVMINI:-} ]] || die "no kvmini in L1"
    [[ -x ${QEMU:-} ]] || die "no qemu in L1"
    mkdir -p /tmp/bench-io/www
    : > /tmp/bench-io/results
    : > /tmp/bench-io/counters
    [[ -d /sys/kernel/debug/kvm ]] || mount -t debugfs none /sys/kernel/debug 2>/dev/null ||
        echo "bench-io: cannot mount debugfs: no KVM exit counts"
    dd if=/dev/zero of=/tmp/bench-io/www/h2g bs=1M count=64 2>/dev/null
    # One server on every address of L1: each tap row's 198.18.0.1, and
    # the loopback the user-mode rows reach as 10.0.2.2.
    httpd -p 8080 -h /tmp/bench-io/www || die "cannot start L1's httpd on port 8080"
    local tap_rows=() user_rows=()
    for row in $rows; do
        case $row in
        *-user|qemu-passt|qemu-slirp) user_rows+=("$row") ;;
        *) tap_rows+=("$row") ;;
        esac
    done
    for row in "${tap_rows[@]}"; do
        echo "bench-io: $row ..."
        run_row "$row" "$reps" || report_failure "$row"
    done
    if [[ ${#user_rows[@]} -gt 0 ]] && ! l1_passt_network; then
        echo "bench-io: cannot give L1 the dummy interface passt needs: no user-mode rows"
        user_rows=()
    fi
    for row in "${user_rows[@]}"; do
        echo "bench-io: $row ..."
        run_user_row "$row" "$reps" || report_failure "$row"
    done
    echo
    echo "BENCH-IO RESULTS (MiB/s, median of $reps; 1 vCPU, 1 GiB; inside the nested L1)"
    printf '%-34s %10s %10s %8s %11s %8s\n' figure kvmini qemu ratio kvmini-base ratio
    for fig in WRITE READ H2G G2H; do
        k=$(row_median kvmini "$fig")
        q=$(row_median qemu "$fig")
        b=$(row_median kvmini-base "$fig")
        printf '%-34s %10s %10s %8s %11s %8s\n' "$(label "$fig")" "$k" "$q" "$(ratio "$k" "$q")" "$b" "$(ratio "$b" "$q")"
    done
    echo
    printf '%-34s %12s %12s %12s %8s %16s\n' "user-mode network" kvmini-user qemu-passt qemu-slirp ratio kvmini-base-user
    for fig in H2G G2H; do
        local ku qp qs best
        ku=$(row_median kvmini-user "$fig")
        qp=$(row_median qemu-passt "$fig")
        qs=$(row_median qemu-slirp "$fig")
        best=$(awk -v a="$qp" -v b="$qs" 'BEGIN { if (a == "-") a = 0; if (b == "-") b = 0; m = a > b ? a : b; print m ? m : "-" }')
        printf '%-34s %12s %12s %12s %8s %16s\n' "$(label "$fig")" "$ku" "$qp" "$qs" "$(ratio "$ku" "$best")" \
            "$(row_median kvmini-base-user "$fig")"
    done
    echo "(ratio: kvmini-user / the better QEMU user-mode figure)"
    print_counters "$rows"
}

# Where the time goes, per MiB moved (all rounds): KVM exits, of them
# port I/O and MMIO to userspace, interrupts injected, HLT exits; CPU
# ms in the guest and outside it (VMM threads + L1's exit handling).
print_counters() {
    local row fig
    [[ -s /tmp/bench-io/counters ]] || { echo "(no KVM counters: debugfs missing)"; return 0; }
    echo
    echo "PER MiB MOVED (KVM's counters in L1 and the VMM's CPU time, all rounds)"
    echo "(rx/tx: eth0's packets and its queues' interrupts, counted by the guest)"
    printf '%-16s %-6s %8s %6s %6s %6s %6s %8s %7s %8s %7s %7s %7s %7s\n' row figure exits pio mmio irqs hlt guest_ms vmm_ms \
        passt_ms rx_pkts tx_pkts rx_irqs tx_irqs
    for row in $1; do
        for fig in WRITE READ H2G G2H; do
            awk -v r="$row" -v f="$fig" '$1 == r && $2 == f { v[$3] = $4; n++ } END {
                if (n) printf "%-16s %-6s %8s %6s %6s %6s %6s %8s %7s %8s %7s %7s %7s %7s\n", r, f, v["exits"],
                    v["io_exits"], v["mmio_exits"], v["irq_injections"], v["halt_exits"], v["guest_ms"],
                    v["vmm_ms"], v["passt_ms"], v["rx_pkts"], v["tx_pkts"], v["rx_irqs"], v["tx_irqs"] }' \
                /tmp/bench-io/counters
        done
    done
}

row_median() {
    awk -v r="$1" -v f="$2" '$1 == r && $2 == f && $3 != "" && $3 != "-" { print $3 }' /tmp/bench-io/results | median
}

label() {
    case $1 in
    WRITE) echo "disk write 256 MiB, O_DIRECT" ;;
    READ) echo "disk read 256 MiB, O_DIRECT" ;;
    H2G) echo "net host->guest 64 MiB (wget)" ;;
    G2H) echo "net guest->host 64 MiB (wget)" ;;
    esac
}

if [[ ${1:-} == --in-l1 ]]; then
    in_l1 "${2:-3}" "${3:-kvmini qemu kvmini-user qemu-passt qemu-slirp}"
    exit
fi

# ---- on the host -----------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=3 log='' rows="kvmini qemu kvmini-user qemu-passt qemu-slirp" base=''
row_names="kvmini qemu kvmini-base kvmini-user qemu-passt qemu-slirp kvmini-base-user"
while [[ $# -gt 0 ]]; do
    case $1 in
    -r) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-r needs a positive number"; reps=$2; shift ;;
    --log) [[ $# -ge 2 ]] || die "--log needs a file"; log=$2; shift ;;
    --rows)
        [[ -n ${2:-} ]] || die "--rows needs a list of rows ($row_names)"
        for r in $2; do
            [[ " $row_names " == *" $r "* ]] || die "--rows: no row '$r' (rows: $row_names)"
        done
        rows=$2; shift ;;
    --base) [[ -x ${2:-} ]] || die "--base needs a kvmini executable"; base=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[[ -x $repo/build/kvmini ]] || die "build/kvmini is missing: meson setup build && ninja -C build"
env_lines=$("$here/fetch-debian.sh" --print-env) || die "fetch-debian.sh failed"
eval "$env_lines"
passt=$(command -v passt) || die "passt is missing (tools/install-deps installs it)"
nested_args=(--with-qemu --smp "${BENCH_L1_SMP:-1}" --memory 6G --timeout 2400
             --file "$here/guest-session.sh" --bin "$passt:/usr/bin/passt"
             --file "${MODULES_DIR:?}/kernel/drivers/net/dummy.ko")
[[ -n $log ]] && nested_args+=(--log "$log")
if [[ " $rows " == *" kvmini-base"* ]]; then
    [[ -n $base ]] || die "rows kvmini-base and kvmini-base-user need --base KVMINI"
    nested_args+=(--bin "$base:/usr/local/bin/kvmini-base")
fi
exec "$here/nested-run" "${nested_args[@]}" "$here/bench-io.sh" --in-l1 "$reps" "$rows"
