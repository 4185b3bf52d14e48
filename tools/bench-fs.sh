#!/bin/bash
# bench-fs.sh: host folders in the guest, kvmini's virtio-fs (--share, the
# default cache=auto; and row kvmini-always, cache=always: the guest keeps
# entries and attributes as 9p's cache=loose does) next to QEMU's
# virtio-9p (-virtfs local, security_model=none; the guest mounts it with
# msize=512K and cache=loose, as vmtest and kvmtool do), in ONE nested L1
# (tools/nested-run --with-qemu, 2 L1 CPUs: BENCH_L1_SMP), same guest kernel and busybox initramfs,
# 1 vCPU, 1 GiB, the folder on L1's tmpfs. Each VMM boots a fresh guest
# per round (cold guest caches), rounds interleaved, and the guest times:
#   big:     read one 256 MiB file (dd, 1 MiB blocks)
#   find:    `find tree | wc -l` over a tree of 20,000 files in 200 folders
#            (sizes 64 B to 4 KiB, like a source tree)
#   readall: read every file of the tree (`tar -cf - tree | wc -c`)
#   create:  unpack the same tree onto the share (`tar -x`, then sync)
#   rm:      `rm -rf` the unpacked tree
# and checks the work was done (file counts, bytes). Prints each figure's
# median in seconds, kvmini's speed-up over 9p (QEMU time / kvmini time:
# above 1 is faster), and per workload KVM's exits, interrupts and the
# VMM's CPU time, to say where the time goes. Then, for the kvmini rows,
# the requests per workload: each workload alone in a fresh guest
# (--exec, --report json), the share's FUSE requests by opcode, the queue
# notifications and interrupts they took (kvmini's own counts).
#
# usage: tools/bench-fs.sh [-r ROUNDS] [--rows "kvmini kvmini-always qemu-9p kvmini-base"]
#                          [--base KVMINI] [--log FILE]
#   (default 1 round, rows kvmini and qemu-9p; -r 0: only the requests
#   per workload; --base: another kvmini build (say, main before a
#   change) as row kvmini-base, cache=auto, interleaved with the others
#   in the same L1; inside L1, tools/nested-run runs it as:
#   bench-fs.sh --in-l1 ROUNDS TAR ROWS)
set -euo pipefail

LIB_PROG=bench-fs
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

figures=(big find readall create rm)
tree_dirs=200 tree_files_per_dir=100

# ---- inside L1 -------------------------------------------------------
progress() { echo "    [$(cut -d' ' -f1 /proc/uptime)] $*"; }

# One workload in the guest: NAME and the command to time; its seconds
# go to the console as NAME=s, with the command's output as NAME_OUT=.
# Counters from before to after go to $KVM_COUNTERS.
guest_time() { # ROW NAME COMMAND
    local row=$1 name=$2 k0
    k0=$(kvm_snap)
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'a=$(t); o=$('"$3"'); b=$(t); echo '"${name^^}"'_OUT=$o; echo '"${name^^}"'=$(el $a $b)\n'
    session_expect "^${name^^}=" || { echo "bench-fs: $row: $name did not finish"; return 1; }
    kvm_record "$row" "$name" 1 "$k0" "$(kvm_snap)"
    progress "$row: $name $(session_value "${name^^}") s"
}

# kvmini_cmd ROW [-- EXTRA...]: cmd for a kvmini row: which build and which
# cache mode the row means, the share as /mnt/data.
kvmini_cmd() {
    local row=$1 vmm=$KVMINI opt=''
    shift
    [[ $row == kvmini-always ]] && opt=,cache=always
    [[ $row == kvmini-base ]] && vmm=/usr/local/bin/kvmini-base
    KVMINI=$vmm vmm_cmd kvmini-bzimage --cmdline "console=ttyS0 quiet panic=-1" --memory 1G \
        --share "/tmp/bench-fs/share:data$opt" "$@"
}

# shellcheck disable=SC2016  # the guest's shell expands what is sent
run_round() { # ROW ROUND
    local row=$1 r=$2 share=/tmp/bench-fs/share
    dir=/tmp/bench-fs/$row-$r
    if [[ $row == kvmini* ]]; then
        kvmini_cmd "$row"
    else
        vmm_cmd qemu-pc --cmdline "console=ttyS0 quiet panic=-1" --memory 1G --share "$share:data"
    fi
    # shellcheck disable=SC2154  # cmd: set by vmm_cmd
    session_start "$dir" "${cmd[@]}"
    session_prompt || { echo "bench-fs: $row: no shell prompt"; session_end; return 1; }
    session_send 't() { cut -d" " -f1 /proc/uptime; }\n'
    session_send 'el() { awk -v a=$1 -v b=$2 "BEGIN { printf \\"%.2f\\", b - a }"; }\n'
    # kvmini's initramfs mounted the share at /mnt/data; 9p is mounted here.
    if [[ $row == qemu-9p ]]; then
        session_send 'mkdir -p /mnt/data && mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose data /mnt/data\n'
    fi
    session_send 'echo MOUNTED=$(grep -c " /mnt/data " /proc/mounts) $(grep " /mnt/data " /proc/mounts | cut -d" " -f3)\n'
    session_expect '^MOUNTED=' || { echo "bench-fs: $row: no answer from the guest"; session_end; return 1; }
    [[ $(session_value MOUNTED) == 1* ]] ||
        { echo "bench-fs: $row: the share is not mounted in the guest"; session_send 'poweroff -f\n'; session_end; return 1; }
    # The archive create unpacks, in guest RAM before the clock starts.
    session_send 'cat /mnt/data/tree.tar > /tmp/tree.tar; echo STAGED=$(wc -c < /tmp/tree.tar)\n'
    session_expect '^STAGED=' || { echo "bench-fs: $row: cannot copy tree.tar"; session_end; return 1; }
    guest_time "$row" big 'dd if=/mnt/data/big of=/dev/null bs=1M 2>&1 | sed -n "s/ records in//p"' &&
    guest_time "$row" find 'find /mnt/data/tree | wc -l' &&
    guest_time "$row" readall 'tar -cf - -C /mnt/data tree | wc -c' &&
    guest_time "$row" create 'mkdir /mnt/data/new && tar -xf /tmp/tree.tar -C /mnt/data/new && sync && find /mnt/data/new | wc -l' &&
    guest_time "$row" rm 'rm -rf /mnt/data/new && ls /mnt/data | wc -l' || { session_send 'poweroff -f\n'; session_end; return 1; }
    session_send 'poweroff -f\n'
    session_end
    check_round "$row" && record_round "$row"
}

# The work was done: every file found, read, created; removed again.
check_round() { # ROW
    # the files, the s* and d* folders, tree/ itself
    local files=$((tree_dirs * tree_files_per_dir + tree_dirs + tree_dirs / 20 + 1)) bad=
    [[ $(session_value BIG_OUT) == 256+0 ]] || bad+=" big read '$(session_value BIG_OUT)' MiB records, not 256+0;"
    [[ $(session_value FIND_OUT) == "$files" ]] || bad+=" find saw $(session_value FIND_OUT) of $files paths;"
    [[ $(session_value READALL_OUT) == "$tree_bytes" ]] ||
        bad+=" readall read $(session_value READALL_OUT) bytes, L1's busybox tar $tree_bytes;"
    [[ $(session_value CREATE_OUT) == $((files + 1)) ]] || bad+=" create left $(session_value CREATE_OUT) paths;"
    [[ ! -e /tmp/bench-fs/share/new ]] || bad+=" rm left /mnt/data/new;"
    if [[ -n $bad ]]; then
        echo "bench-fs: $1: wrong results:$bad"
        echo "bench-fs: $1: the first errors the guest printed:"
        grep -aE "^(tar|rm|find|dd): " "$dir/txt" | head -n 8 | sed 's/^/    | /'
        return 1
    fi
}

record_round() { # ROW
    local f
    for f in "${figures[@]}"; do
        echo "$1 $f $(session_value "${f^^}")"
    done >> /tmp/bench-fs/results
}

# The requests each kvmini row's share served for each workload, alone
# in a fresh guest (cold caches, as in a round's first workload: find and
# readall there follow other workloads, whose entries cache=always
# keeps), the rows interleaved per workload. The tree for rm is unpacked
# by L1; the archive for create is read from a second share (counted
# apart).
request_pass() { # ROW...
    local share=/tmp/bench-fs/share stage=/tmp/bench-fs/stage f row
    mkdir -p "$stage"
    ln -f "$share/tree.tar" "$stage/tree.tar" 2>/dev/null || cp "$share/tree.tar" "$stage/tree.tar"
    for f in "${figures[@]}"; do
        for row in "$@"; do
            request_one "$row" "$f"
        done
    done
    rm -rf "$share/new"
}

request_one() { # ROW WORKLOAD
    local row=$1 f=$2 share=/tmp/bench-fs/share stage=/tmp/bench-fs/stage work json
    rm -rf "$share/new"
    case $f in
    big) work='dd if=/mnt/data/big of=/dev/null bs=1M' ;;
    find) work='find /mnt/data/tree | wc -l' ;;
    readall) work='tar -cf - -C /mnt/data tree | wc -c' ;;
    create) work='cat /mnt/stage/tree.tar > /tmp/tree.tar && mkdir /mnt/data/new && tar -xf /tmp/tree.tar -C /mnt/data/new && sync' ;;
    rm) mkdir "$share/new" && tar -xf "$stage/tree.tar" -C "$share/new"; work='rm -rf /mnt/data/new' ;;
    esac
    json=/tmp/bench-fs/requests-$row-$f.json
    kvmini_cmd "$row" -- --share "$stage:stage,ro" --report "json:$json" --exec "$work"
    local st=0 out=/tmp/bench-fs/requests-$row-$f.out
    timeout 2400 "${cmd[@]}" < /dev/null > "$out" 2>&1 || st=$?
    if [[ $st -ne 0 ]]; then
        echo "bench-fs: requests: $row $f: kvmini status $st; the guest's kernel messages and the last lines:"
        grep -aE 'Kernel panic|Oops|BUG|WARNING|Out of memory|kvmini: ' "$out" | head -n 20 | sed 's/^/    ! /'
        grep -av '^ *\(R[0-9A-Z]\|CR0\|[CSDEFG]S \|TR \|LDT\|GDT\|RIP\|RAX\|RSI\)' "$out" | tail -n 25 | sed 's/^/    | /'
        return 0
    fi
    # The VM's exits (boot included: about 5,000) by kind, then the
    # share's counts and its requests by opcode.
    jq -r --arg row "$row" --arg f "$f" '(.kvm_exits // {}) as $x | .milestones as $m |
        .shares[] | select(.tag == "data") |
        "\($row) \($f) \(if $m.command_done and $m.command_started then
            ($m.command_done - $m.command_started) * 100 | round / 100 else "-" end) " +
        "\(.requests) \(.notifications) \(.interrupts) \($x.total // "-") \($x.mmio // "-") " +
        "\($x.io // "-") \($x.halt // "-") \($x.other // "-") " +
        ([.ops | to_entries | sort_by(-.value)[] | "\(.key)=\(.value)"] | join(" "))' "$json" \
        > "$json.line" && [[ -s $json.line ]] || { echo "bench-fs: requests: $row $f: no share counts in $json"; return 0; }
    cat "$json.line" >> /tmp/bench-fs/requests
    progress "$row: requests for $f: $(cat "$json.line")"
}

# The request table: per row and workload, the requests and what they
# took, per path of the tree (files and folders) for the tree workloads.
print_requests() {
    local paths=$((tree_dirs * tree_files_per_dir + tree_dirs + tree_dirs / 20 + 1))
    [[ -s /tmp/bench-fs/requests ]] || return 0
    echo
    echo "REQUESTS PER WORKLOAD (kvmini's --report, each workload alone in a fresh guest; seconds: the"
    echo "  command's, from kvmini's milestones (the timed rounds' figures are the guest's); per path: / $paths;"
    echo "  the VM's KVM exits, boot included, by kind: mmio and io kicks and accesses, hlt, other (emulated"
    echo "  instructions, MSRs...))"
    printf '%-13s %-8s %7s %8s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n' row workload seconds requests notify \
        irqs per-path exits mmio io hlt other "by opcode"
    while read -r row f secs req nt irq ex mmio io hlt other ops; do
        per=-
        [[ $f != big ]] && per=$(awk -v a="$req" -v b="$paths" 'BEGIN { printf "%.2f", a / b }')
        printf '%-13s %-8s %7s %8s %8s %8s %8s %8s %8s %8s %8s %8s  %s\n' "$row" "$f" "$secs" "$req" "$nt" "$irq" \
            "$per" "$ex" "$mmio" "$io" "$hlt" "$other" "$ops"
    done < /tmp/bench-fs/requests
}

label() {
    case $1 in
    big) echo "read one 256 MiB file" ;;
    find) echo "find | wc -l, 20,000 files" ;;
    readall) echo "read every file (tar -c)" ;;
    create) echo "create the tree (tar -x, sync)" ;;
    rm) echo "rm -rf the tree" ;;
    esac
}

in_l1() {
    local rounds=$1 tar=${PAYLOAD_FILES:-/payload/files}/$2 rows=$3 r row f k a q
    # shellcheck disable=SC1091
    source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
    # A whole boot's work: QEMU's 9p create alone ran past 530 s once.
    session_timeout=2400
    export KVM_COUNTERS=/tmp/bench-fs/counters
    [[ -x ${QEMU:-} ]] || die "no qemu in L1"
    # A line every 120 s: nested-run takes an L1 whose console is silent for
    # 600 s for frozen, and one workload can run longer than that (QEMU 9p's
    # tar -x took 1,097 s; without this it was once stopped as "frozen").
    l1_watch bench-fs-watch "${BENCH_WATCH:-120}"
    trap 'kill "$l1_watch_pid" 2>/dev/null' EXIT
    # Every inode the guest knows is an fd kvmini holds (20,000 here): L1's
    # busybox init leaves the kernel's hard limit of 4,096, which a desktop
    # session or CI runner raises (systemd: 524,288). QEMU gets the same.
    ulimit -Hn 1048576 && ulimit -n 1048576 || die "cannot raise the open-file limit in L1"
    mkdir -p /tmp/bench-fs/share
    : > /tmp/bench-fs/results
    : > /tmp/bench-fs/requests
    : > "$KVM_COUNTERS"
    [[ -d /sys/kernel/debug/kvm ]] || mount -t debugfs none /sys/kernel/debug 2>/dev/null ||
        echo "bench-fs: cannot mount debugfs: no KVM exit counts"
    dd if=/dev/urandom of=/tmp/bench-fs/share/big bs=1M count=256 2>/dev/null
    cp "$tar" /tmp/bench-fs/share/tree.tar
    tar -xf /tmp/bench-fs/share/tree.tar -C /tmp/bench-fs/share || die "cannot unpack the tree in L1"
    # What the guest's busybox tar must produce from the tree: the same tar.
    tree_bytes=$(tar -cf - -C /tmp/bench-fs/share tree | wc -c)
    progress "share ready: $(find /tmp/bench-fs/share/tree | wc -l) paths in tree/ ($tree_bytes bytes as a tar), 256 MiB big"
    for ((r = 1; r <= rounds; r++)); do
        for row in $rows; do
            echo "bench-fs: $row, round $r ..."
            if ! run_round "$row" "$r"; then
                echo "bench-fs: $row round $r FAILED; its console:"
                tail -n 20 "$dir/txt" 2>/dev/null | sed 's/^/    | /'
                tail -n 5 "$dir/err" 2>/dev/null | sed 's/^/    ! /'
            fi
        done
    done
    echo
    echo "BENCH-FS RESULTS (seconds, median of $rounds; 1 vCPU, 1 GiB; inside the nested L1)"
    printf '%-34s %10s %10s %10s %9s %9s %10s\n' workload kvmini kv-always qemu-9p speedup sp-always kv-base
    # The median of ROW's figure F over the rounds.
    row_median() { awk -v r="$1" -v f="$2" '$1 == r && $2 == f && $3 != "" { print $3 }' /tmp/bench-fs/results | median; }
    for f in "${figures[@]}"; do
        k=$(row_median kvmini "$f") a=$(row_median kvmini-always "$f") q=$(row_median qemu-9p "$f")
        printf '%-34s %10s %10s %10s %9s %9s %10s\n' "$(label "$f")" "$k" "$a" "$q" "$(ratio "$q" "$k")" \
            "$(ratio "$q" "$a")" "$(row_median kvmini-base "$f")"
    done
    echo "(speedup: QEMU-9p's time / kvmini's (cache=auto), sp-always: / kvmini's with cache=always; the target is 2 or more on the tree workloads, 1 or more on the big file)"
    local kvmini_rows=()
    for row in $rows; do
        [[ $row == kvmini* ]] && kvmini_rows+=("$row")
    done
    [[ ${#kvmini_rows[@]} -gt 0 ]] && request_pass "${kvmini_rows[@]}"
    print_requests
    [[ -s $KVM_COUNTERS ]] || return 0
    echo
    echo "PER WORKLOAD (KVM's counters in L1 and the VMM's CPU time, mean of the rounds)"
    printf '%-13s %-8s %9s %8s %8s %8s %9s %9s\n' row workload exits pio mmio irqs guest_ms vmm_ms
    for row in kvmini kvmini-always kvmini-base qemu-9p; do
        for f in "${figures[@]}"; do
            awk -v r="$row" -v f="$f" '$1 == r && $2 == f { s[$3] += $4; n[$3]++ } END {
                if (length(n)) printf "%-13s %-8s %9d %8d %8d %8d %9d %9d\n", r, f, s["exits"] / n["exits"],
                    s["io_exits"] / n["io_exits"], s["mmio_exits"] / n["mmio_exits"],
                    s["irq_injections"] / n["irq_injections"], s["guest_ms"] / n["guest_ms"], s["vmm_ms"] / n["vmm_ms"] }' \
                "$KVM_COUNTERS"
        done
    done
}

if [[ ${1:-} == --in-l1 ]]; then
    in_l1 "$2" "$3" "$4"
    exit
fi

# ---- on the host -----------------------------------------------------
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
rounds=1 log='' rows="kvmini qemu-9p" base=''
while [[ $# -gt 0 ]]; do
    case $1 in
    -r) [[ ${2:-} =~ ^[0-9]+$ ]] || die "-r needs a number (0: only the requests per workload)"; rounds=$2; shift ;;
    --log) [[ $# -ge 2 ]] || die "--log needs a file"; log=$2; shift ;;
    --rows) [[ ${2:-} =~ ^(kvmini|kvmini-always|kvmini-base|qemu-9p)( (kvmini|kvmini-always|kvmini-base|qemu-9p)){0,3}$ ]] ||
                die "--rows takes kvmini, kvmini-always, kvmini-base and/or qemu-9p"; rows=$2; shift ;;
    --base) [[ -x ${2:-} ]] || die "--base needs a kvmini executable"; base=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[[ -x $repo/build/kvmini ]] || die "build/kvmini is missing: meson setup build && ninja -C build"
export KVMINI_CACHE=${KVMINI_CACHE:-$repo/.cache}

# The tree, as a tar archive built once (cached): $tree_dirs folders of
# $tree_files_per_dir files each, sizes 64 B to 4 KiB, fixed content.
make_tree() { # OUT
    local stage d f
    stage=$(mktemp -d "${TMPDIR:-/tmp}/bench-fs-tree.XXXXXX")
    head -c 4096 /dev/zero | tr '\0' 'k' > "$stage/.block"
    for ((d = 0; d < tree_dirs; d++)); do
        mkdir -p "$stage/tree/d$((d / 20))/s$d"
        for ((f = 0; f < tree_files_per_dir; f++)); do
            head -c $(((d * 7919 + f * 104729) % 4033 + 64)) "$stage/.block" > "$stage/tree/d$((d / 20))/s$d/f$f.c"
        done
    done
    tar -cf "$1" -C "$stage" tree
    rm -rf "$stage"
}
tree_tar=$(cache_build bench-fs-tree tar "v1-$tree_dirs-$tree_files_per_dir-0000000" make_tree) ||
    die "cannot build the file tree"
# Two L1 CPUs: with one (single-threaded TCG) the L1 froze in QEMU's 9p
# find three times of three (README, "Shared folders").
nested_args=(--with-qemu --smp "${BENCH_L1_SMP:-2}" --memory 6G --timeout 6000 --stall 600
             --file "$here/guest-session.sh" --file "$tree_tar")
jq=$(command -v jq) || die "jq is missing (tools/install-deps installs it)"
nested_args+=(--bin "$jq:/usr/bin/jq")
[[ -n $log ]] && nested_args+=(--log "$log")
if [[ " $rows " == *" kvmini-base "* ]]; then
    [[ -n $base ]] || die "row kvmini-base needs --base KVMINI"
    nested_args+=(--bin "$base:/usr/local/bin/kvmini-base")
fi
exec "$here/nested-run" "${nested_args[@]}" "${BASH_SOURCE[0]}" --in-l1 "$rounds" "$(basename "$tree_tar")" "$rows"
