#!/bin/bash
# mkinitramfs.sh: build the guest initramfs, an uncompressed newc cpio
# (the guest kernel spends no time decompressing it) holding busybox-static
# and an /init that:
#   - mounts devtmpfs, prints KVMINI-USERSPACE-UP as its very first output
#     (benchmarks time this line), then mounts proc and sysfs;
#   - with kvmini.bench=1 (or =poweroff) on the kernel command line, prints
#     "KVMINI-UPTIME=<seconds>" and powers off at once (`poweroff -f`, needs
#     ACPI); with kvmini.bench=reboot it runs `reboot -f` instead (for
#     machines without ACPI: pair it with reboot=k where an i8042 exists, or
#     reboot=t for a triple fault, which a VMM run with -no-reboot ends on);
#   - loads the virtio drivers from the kernel package's modules when the
#     machine has virtio devices (virtio-pci vendor 0x1af4, or virtio-mmio
#     LNRO0005 in ACPI): the transports first, then only the drivers for the
#     device types present (block also brings ext4, a virtio-fs device
#     fuse and virtiofs, a virtio-9p device 9p and 9pnet_virtio, for the
#     QEMU rows of tools/bench-fs.sh); with console=hvc0 the shell then
#     runs on hvc0;
#   - mounts each folder kvmini shares (--share: kvmini.shares=TAG[:ro],...
#     on the command line) at /mnt/TAG, reading ahead 1 MiB; with kvmini.root9p=TAG mounts that
#     virtio-9p share read-only, runs its /bin/true and powers off;
#   - reports "userspace up" on kvmini's control port, loads the pvpanic
#     driver (kvmini then sees a kernel panic), and when kvmini's
#     --exec appended /kvmini/exec, runs it with its stdout on ttyS1 and its
#     stderr on ttyS2, reports its exit status, and powers off;
#   - otherwise runs an interactive shell with job control on the console
#     (setsid cttyhack sh) and runs `poweroff -f` when that shell exits.
# The cpio goes to the cache folder and is rebuilt only when this script or
# busybox change. Prints its path.
#
# usage: tools/mkinitramfs.sh [--out FILE]
set -euo pipefail

LIB_PROG=mkinitramfs
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=
while [[ $# -gt 0 ]]; do
    case $1 in
    --out) [[ $# -ge 2 ]] || die "--out needs a file"; out=$2; shift ;;
    -h|--help) sed -n '2,29s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

env_lines=$("$here/fetch-debian.sh" --print-env) || die "fetch-debian.sh failed"
eval "$env_lines"
# --- kvmini --exec: the pvpanic driver (a module in Debian's kernel) ---
pvpanic_kos=("$MODULES_DIR/kernel/drivers/misc/pvpanic/pvpanic.ko"
             "$MODULES_DIR/kernel/drivers/misc/pvpanic/pvpanic-mmio.ko")
for ko in "${pvpanic_kos[@]}"; do
    [[ -f $ko ]] || die "$ko is missing: kvmini reports guest panics through pvpanic"
done
# --- end ---
command -v cpio >/dev/null || die "cpio is missing: apt-get install cpio"

# Writes the archive to $1 (called by cache_build, under its lock).
build() {
local out=$1 stage
stage=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-initramfs.XXXXXX")
# shellcheck disable=SC2064  # expand now: $stage is local
trap "rm -rf '$stage'" EXIT
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp root etc
cp "$BUSYBOX" bin/busybox
# The applet links are made here rather than by `busybox --install -s` in
# /init: the guest spends no time on them.
"$BUSYBOX" --list-full | while read -r applet; do
    [[ -e $applet || -L $applet ]] || ln -s /bin/busybox "$applet"
done
[[ -e bin/sh ]] || ln -s busybox bin/sh
# The kernel opens /dev/console before it runs /init; creating the node needs
# root, and /init copes without it (it reopens the console from devtmpfs).
mknod -m 600 dev/console c 5 1 2>/dev/null || true
mknod -m 666 dev/null c 1 3 2>/dev/null || true
# --- kvmini --exec: pvpanic modules, loaded by the block in /init ---
mkdir -p lib/modules/kvmini
cp "${pvpanic_kos[@]}" lib/modules/kvmini/
# --- end ---

# Virtio modules, with their dependencies first (read from each module's
# depends=), copied to /lib/modules/kvmini with one NAME.order file per
# group: the guest's /init loads a group with insmod in that order.
mod_path() { find "$MODULES_DIR/kernel" -name "$1.ko" -print -quit; }
mod_order() { # NAME...: print NAME and its dependencies, dependencies first
    local m f dep
    for m in "$@"; do
        [[ " $seen " == *" $m "* ]] && continue
        f=$(mod_path "$m")
        [[ -n $f ]] || die "module $m.ko not found under $MODULES_DIR"
        for dep in $(strings "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do
            mod_order "$dep"
        done
        seen="$seen $m"
        echo "$m"
    done
}
mkdir -p lib/modules/kvmini
declare -A mod_groups=(
    [base]="virtio_pci virtio_mmio"
    [blk]="virtio_blk crc32c_generic ext4"
    [net]="virtio_net"
    [console]="virtio_console"
    [fs]="virtiofs"
    [9p]="9pnet_virtio 9p"
)
for group in base blk net console fs 9p; do
    seen=
    [[ $group != base ]] && seen=$(cat lib/modules/kvmini/base.order)
    # shellcheck disable=SC2086  # word splitting wanted
    mod_order ${mod_groups[$group]} > "lib/modules/kvmini/$group.order.all"
    grep -vxF -f <(cat lib/modules/kvmini/base.order 2>/dev/null) \
        "lib/modules/kvmini/$group.order.all" > "lib/modules/kvmini/$group.order" || true
    rm "lib/modules/kvmini/$group.order.all"
    [[ $group == base ]] && [[ ! -s lib/modules/kvmini/base.order ]] && die "no base modules"
    while read -r m; do
        cp "$(mod_path "$m")" lib/modules/kvmini/
    done < "lib/modules/kvmini/$group.order"
done

cat > etc/kvmini-dhcp.sh <<'EOF'
#!/bin/sh
# udhcpc's script (tools/mkinitramfs.sh): applies a lease to $interface.
case $1 in
deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up ;;
bound | renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    for r in $router; do
        ip route add default via "$r" dev "$interface"
        break
    done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    [ -n "$domain" ] && echo "search $domain" >>/etc/resolv.conf
    echo "init: $interface: $ip/${mask:-24} via ${router:-no router}" ;;
esac
exit 0
EOF
chmod 755 etc/kvmini-dhcp.sh

cat > init <<'EOF'
#!/bin/sh
# kvmini guest /init (written by tools/mkinitramfs.sh)
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# With console=hvc0 /dev/console cannot be opened yet (virtio_console is a
# module): a failed redirection must not end /init.
if (: </dev/console) 2>/dev/null; then
    exec </dev/console >/dev/console 2>&1
fi
echo KVMINI-USERSPACE-UP
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root

# --- virtio drivers (see tools/mkinitramfs.sh's header) ---
load_group() {
    for m in $(cat "/lib/modules/kvmini/$1.order"); do
        insmod "/lib/modules/kvmini/$m.ko" || echo "init: insmod $m failed"
    done
}
if grep -qs 0x1af4 /sys/bus/pci/devices/*/vendor || ls /sys/bus/acpi/devices 2>/dev/null | grep -q '^LNRO0005'; then
    load_group base
    want=
    for d in /sys/bus/virtio/devices/*/device; do
        [ -f "$d" ] || continue
        case $(cat "$d") in
        0x0001) want="$want net" ;;
        0x0002) want="$want blk" ;;
        0x0003) want="$want console" ;;
        0x001a) want="$want fs" ;;
        0x0009) want="$want 9p" ;;
        esac
    done
    for g in net blk console fs 9p; do
        case " $want " in *" $g "*) load_group "$g" ;; esac
    done
fi
# A FUSE mount reads ahead 128 KiB at a time, so a large file costs a
# request (an exit, a worker hand-off, an interrupt) per 128 KiB: 1 MiB,
# kvmini's largest request, as 9p reads ahead one msize. The mount's bdi
# is named by its device number.
share_readahead() {
    d=$(stat -c %d "$1") || return
    b=/sys/class/bdi/$((d >> 8 & 4095)):$(( (d & 255) | (d >> 12 & 1048320) ))
    [ -w "$b/read_ahead_kb" ] && echo 1024 > "$b/read_ahead_kb"
}
# kvmini --share: kvmini.shares=TAG[:ro],... on the command line; each
# share is mounted at /mnt/TAG (read-only for :ro), reading ahead 1 MiB.
for arg in $(cat /proc/cmdline); do
    case $arg in kvmini.shares=*) ;; *) continue ;; esac
    for s in $(echo "${arg#kvmini.shares=}" | tr , ' '); do
        t=${s%:ro}; o=rw
        [ "$t" != "$s" ] && o=ro
        mkdir -p "/mnt/$t"
        mount -t virtiofs -o "$o" "$t" "/mnt/$t" || { echo "init: cannot mount share $t"; continue; }
        share_readahead "/mnt/$t"
    done
done
# kvmini.root9p=TAG (tools/bootbench's qemu-9p-root row: vmtest's recipe,
# the host's root over virtio-9p, with Debian's modular 9p): mount it
# read-only, run its /bin/true, power off.
for arg in $(cat /proc/cmdline); do
    case $arg in kvmini.root9p=*) ;; *) continue ;; esac
    mkdir -p /newroot
    if mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=524288,cache=loose \
            "${arg#kvmini.root9p=}" /newroot; then
        chroot /newroot /bin/true && echo KVMINI-ROOT9P-TRUE
    else
        echo "init: cannot mount the 9p root ${arg#kvmini.root9p=}"
    fi
    poweroff -f
done
# kvmini --net user: kvmini.dhcp=MAC,... names the NICs passt serves;
# each is brought up with DHCP (passt answers at once; see the README
# for the addresses it gives).
for arg in $(cat /proc/cmdline); do
    case $arg in kvmini.dhcp=*) ;; *) continue ;; esac
    ip link set lo up
    for mac in $(echo "${arg#kvmini.dhcp=}" | tr , ' '); do
        for a in /sys/class/net/*/address; do
            [ "$(cat "$a")" = "$mac" ] || continue
            ifc=$(basename "$(dirname "$a")")
            ip link set "$ifc" up
            udhcpc -i "$ifc" -s /etc/kvmini-dhcp.sh -q -n -t 5 -T 1 >/dev/null 2>&1 ||
                echo "init: no DHCP answer on $ifc ($mac)"
        done
    done
done
# With console=hvc0 the kernel had no console to give /init: take hvc0 now.
case " $(cat /proc/cmdline) " in
*" console=hvc0 "*)
    if [ -c /dev/hvc0 ]; then
        exec </dev/hvc0 >/dev/hvc0 2>&1
        echo KVMINI-USERSPACE-UP
    fi ;;
esac
# --- end of virtio drivers ---
# --- kvmini control port and --exec (devices/control_port.c, vmm/main.c) ---
# kvmini_ctl OFFSET BYTE: one outb to kvmini's control port (0x5a0):
# offset 0 takes events (1 userspace up, 2 command started), offset 1 the
# command's exit status. Other VMMs ignore the write.
kvmini_ctl() {
    printf "\\$(printf %o "$2")" |
        dd of=/dev/port bs=1 seek=$((0x5a0 + $1)) count=1 conv=notrunc 2>/dev/null
}
kvmini_ctl 0 1
# pvpanic: the kernel then tells kvmini (I/O 0x505, ACPI QEMU0001) when
# it panics, and kvmini exits 121.
insmod /lib/modules/kvmini/pvpanic.ko 2>/dev/null
insmod /lib/modules/kvmini/pvpanic-mmio.ko 2>/dev/null
# kvmini --exec appends a cpio with the command, byte for byte, as
# /kvmini/exec. Its stdout goes to ttyS1 (COM2) and stderr to ttyS2 (COM3),
# raw so bytes pass unchanged; kvmini copies them to its own stdout and
# stderr. The last close of a UART waits until its output is sent, so
# everything is out before the status is reported and the VM powers off.
if [ -f /kvmini/exec ]; then
    stty -F /dev/ttyS1 raw -echo 2>/dev/null
    stty -F /dev/ttyS2 raw -echo 2>/dev/null
    kvmini_ctl 0 2
    (cd /root && exec sh /kvmini/exec) </dev/null >/dev/ttyS1 2>/dev/ttyS2
    kvmini_ctl 1 $?
    poweroff -f
fi
# --- end of the kvmini --exec block ---
bench=
for arg in $(cat /proc/cmdline); do
    case $arg in kvmini.bench=*) bench=${arg#kvmini.bench=} ;; esac
done
case $bench in
"" | 0) ;;
reboot)
    read -r up _ </proc/uptime; echo "KVMINI-UPTIME=$up"
    reboot -f ;;
*)
    read -r up _ </proc/uptime; echo "KVMINI-UPTIME=$up"
    poweroff -f ;;
esac
cd /root
setsid cttyhack sh
poweroff -f
EOF
chmod 755 init

find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 > "$out.tmp"
mv "$out.tmp" "$out"
}

# Keyed by this script and busybox: rebuilt only when either changes.
if [[ -n $out ]]; then
    build "$out"
    echo "$out"
else
    cache_build guest-initramfs cpio "$(cat "${BASH_SOURCE[0]}" "$BUSYBOX" | sha256sum | cut -d" " -f1)" build
fi
