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
# Prints each figure's median in MiB/s and kvmini's ratio to QEMU.
#
# usage: tools/bench-io.sh [-r REPEATS] [--log FILE]   (default R=3)
#   (inside L1, tools/nested-run runs it as: bench-io.sh --in-l1 R)
set -euo pipefail

LIB_PROG=bench-io
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- inside L1 -------------------------------------------------------
guest_cmdline="console=ttyS0 quiet panic=-1"


now() { date +%s.%N; }
mibps() { awk -v mib="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) print "-"; else printf "%.1f\n", mib / d }'; }

run_row() { # ROW REPEATS
    local row=$1 reps=$2 img=/tmp/bench-io/$1.img tap=${1:0:1}tap0 r n t0 t1
    truncate -s 300M "$img"
    # shellcheck disable=SC2154  # cmd: set by vmm_cmd
    vmm_cmd "$([[ $row == kvmini ]] && echo kvmini-bzimage || echo qemu-pc)" \
        --cmdline "$guest_cmdline" --memory 1G --disk "$img" --tap "$tap"
    session_start "/tmp/bench-io/$row" "${cmd[@]}"
    n=0
    until ip link show "$tap" >/dev/null 2>&1 || ((n++ > 600)); do sleep 0.1; done
    ip addr add 198.18.0.1/24 dev "$tap" && ip link set "$tap" up ||
        { echo "bench-io: $row: no tap $tap appeared"; session_end; return 1; }
    session_prompt || { echo "bench-io: $row: no shell prompt"; session_end; return 1; }
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'ip addr add 198.18.0.2/24 dev eth0; ip link set eth0 up; ip link set lo up\n'
    session_send 't() { cut -d" " -f1 /proc/uptime; }\n'
    session_send 'rate() { awk -v m=$1 -v a=$2 -v b=$3 "BEGIN { printf \\"%.1f\\", m / (b - a) }"; }\n'
    for ((r = 1; r <= reps; r++)); do
        # shellcheck disable=SC2016
        session_send 'a=$(t); dd if=/dev/zero of=/dev/vda bs=1M count=256 oflag=direct 2>/dev/null; b=$(t); echo WRITE'"$r"'=$(rate 256 $a $b)\n'
        # shellcheck disable=SC2016
        session_send 'a=$(t); dd if=/dev/vda of=/dev/null bs=1M count=256 iflag=direct 2>/dev/null; b=$(t); echo READ'"$r"'=$(rate 256 $a $b)\n'
        # shellcheck disable=SC2016
        session_send 'a=$(t); wget -q -O /dev/null http://198.18.0.1:8080/h2g; b=$(t); echo H2G'"$r"'=$(rate 64 $a $b)\n'
    done
    session_send 'mkdir -p /www; dd if=/dev/zero of=/www/g2h bs=1M count=64 2>/dev/null; httpd -p 8080 -h /www && echo HTTPD=up\n'
    session_expect "^H2G$reps=" && session_expect '^HTTPD=up' ||
        { echo "bench-io: $row: the guest did not finish its part"; session_send 'poweroff -f\n'; session_end; return 1; }
    for ((r = 1; r <= reps; r++)); do
        t0=$(now)
        wget -q -O /dev/null http://198.18.0.2:8080/g2h || echo "bench-io: $row: guest->host wget failed"
        t1=$(now)
        echo "G2H$r=$(mibps 64 "$t0" "$t1")" >> "$dir/host"
    done
    session_send 'poweroff -f\n'
    session_end
    cat "$dir/host" >> "$dir/txt"
    for fig in WRITE READ H2G G2H; do
        for ((r = 1; r <= reps; r++)); do
            echo "$row $fig $(session_value "$fig$r")"
        done
    done >> /tmp/bench-io/results
    rm -f "$img"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        printf "%.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

in_l1() {
    local reps=$1 row fig k q
    # shellcheck disable=SC1091
    source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
    session_timeout=900
    [[ -x ${KVMINI:-} ]] || die "no kvmini in L1"
    [[ -x ${QEMU:-} ]] || die "no qemu in L1"
    mkdir -p /tmp/bench-io/www
    : > /tmp/bench-io/results
    dd if=/dev/zero of=/tmp/bench-io/www/h2g bs=1M count=64 2>/dev/null
    httpd -p 198.18.0.1:8080 -h /tmp/bench-io/www 2>/dev/null || true
    for row in kvmini qemu; do
        echo "bench-io: $row ..."
        run_row "$row" "$reps" || { echo "bench-io: $row FAILED; its console:"; tail -n 30 "$dir/txt" | sed 's/^/    | /'; tail -n 10 "$dir/err" | sed 's/^/    ! /'; }
        # The host httpd must listen again on the next tap's address.
        pkill -f 'httpd -p 198.18.0.1:8080' 2>/dev/null || true
        sleep 0.5
        httpd -p 198.18.0.1:8080 -h /tmp/bench-io/www 2>/dev/null || true
    done
    echo
    echo "BENCH-IO RESULTS (MiB/s, median of $reps; 1 vCPU, 1 GiB; inside the nested L1)"
    printf '%-34s %10s %10s %8s\n' figure kvmini qemu ratio
    for fig in WRITE READ H2G G2H; do
        k=$(awk -v f="$fig" '$1 == "kvmini" && $2 == f && $3 != "" && $3 != "-" { print $3 }' /tmp/bench-io/results | median)
        q=$(awk -v f="$fig" '$1 == "qemu" && $2 == f && $3 != "" && $3 != "-" { print $3 }' /tmp/bench-io/results | median)
        printf '%-34s %10s %10s %8s\n' "$(label "$fig")" "$k" "$q" \
            "$(awk -v a="$k" -v b="$q" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }')"
    done
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
    in_l1 "${2:-3}"
    exit
fi

# ---- on the host -----------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
reps=3 log=
while [[ $# -gt 0 ]]; do
    case $1 in
    -r) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "-r needs a positive number"; reps=$2; shift ;;
    --log) [[ $# -ge 2 ]] || die "--log needs a file"; log=$2; shift ;;
    -h|--help) sed -n '2,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[[ -x $repo/build/kvmini ]] || die "build/kvmini is missing: meson setup build && ninja -C build"
nested_args=(--with-qemu --smp "${BENCH_L1_SMP:-1}" --memory 6G --timeout 2400
             --file "$here/guest-session.sh")
[[ -n $log ]] && nested_args+=(--log "$log")
exec "$here/nested-run" "${nested_args[@]}" "$here/bench-io.sh" --in-l1 "$reps"
