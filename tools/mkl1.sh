#!/bin/bash
# mkl1.sh: build the initramfs of the nested L1 machine (see
# shared/KVM-HERE.md), as uncompressed newc cpio archives (TCG decompresses
# slowly). The kernel unpacks concatenated archives in order, so an L1
# initrd is a cached base plus a small per-run layer:
#
#   tools/mkl1.sh base [--with-qemu]
#       Build (or find in the cache) the base archive and print its path:
#       busybox, bash, the modules irqbypass, ccp, kvm, kvm-amd and tun,
#       the guest kernel (/guest/vmlinuz-VERSION) and the guest initramfs
#       (/guest/initramfs.cpio), /etc/l1-env and the L1 /init. With
#       --with-qemu also qemu-system-x86_64, its libraries and the firmware
#       that `-M pc` and `-M microvm` with -kernel read. Rebuilt only when an
#       input changes (name, size and mtime of every input file).
#
#   tools/mkl1.sh layer --out FILE [--bin SRC:DEST]... [--file SRC:DEST]...
#       Build a small archive with programs (each with the shared libraries
#       ldd lists, and the dynamic loader) and plain files at DEST.
#
# The L1 /init loads the modules, reports whether /dev/kvm works, exports
# the variables in /etc/l1-env (GUEST_KERNEL, GUEST_KERNEL_VERSION,
# GUEST_INITRD, QEMU when present, KVMINI and VMMSTAT when the layer has
# them), runs /payload/run (written by tools/nested-run) and prints
# `L1-EXIT=<status>` as its last line before `poweroff -f`.
set -euo pipefail

LIB_PROG=mkl1
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")

# The firmware QEMU 7.2 opens for -M pc / -M microvm with -kernel (found with
# strace), and pvh.bin for an ELF -kernel.
qemu_firmware=(
    /usr/share/seabios/bios-256k.bin
    /usr/share/qemu/bios-256k.bin
    /usr/share/qemu/kvmvapic.bin
    /usr/share/qemu/linuxboot.bin
    /usr/share/qemu/linuxboot_dma.bin
    /usr/share/qemu/pvh.bin
    /usr/share/qemu/bios-microvm.bin
    /usr/share/qemu/qboot.rom
)
l1_modules=(
    virt/lib/irqbypass.ko
    drivers/crypto/ccp/ccp.ko
    arch/x86/kvm/kvm.ko
    arch/x86/kvm/kvm-amd.ko
    drivers/net/tun.ko
)
# A disk given to L1 (tools/nested-run --disk): loaded only when L1 has a
# virtio device, in this order.
l1_disk_modules=(
    drivers/virtio/virtio_ring.ko
    drivers/virtio/virtio.ko
    drivers/virtio/virtio_pci_modern_dev.ko
    drivers/virtio/virtio_pci_legacy_dev.ko
    drivers/virtio/virtio_pci.ko
    drivers/block/virtio_blk.ko
)

# Print the files a dynamically linked program needs: the libraries ldd
# resolves and the loader. Nothing for a static one.
needed_libs() {
    ldd "$1" 2>/dev/null | awk '
        $2 == "=>" && $3 ~ /^\// { print $3 }
        $1 ~ /^\// { print $1 }' | sort -u
}

# Copy SRC to STAGE/DEST (following symlinks), creating folders.
stage_file() {
    local stage=$1 src=$2 dest=$3
    mkdir -p "$stage$(dirname "$dest")"
    cp -L "$src" "$stage$dest"
}

# Copy a program and its libraries into STAGE.
stage_bin() {
    local stage=$1 src=$2 dest=$3 lib
    [[ -f $src ]] || die "no such program: $src"
    stage_file "$stage" "$src" "$dest"
    chmod 755 "$stage$dest"
    while read -r lib; do
        [[ -n $lib && -e $stage$lib ]] || stage_file "$stage" "$lib" "$lib"
    done < <(needed_libs "$src")
}

write_cpio() {
    local stage=$1 out=$2 tmp
    tmp=$out.tmp.$$
    mkdir -p "$(dirname "$out")"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0) > "$tmp"
    mv "$tmp" "$out"
}

write_l1_init() {
    cat > "$1" <<'EOF'
#!/bin/sh
# L1 /init (written by tools/mkl1.sh)
# Everything runs from a bind mount of the initramfs's root moved over
# "/" (what switch_root does), not from rootfs itself: pivot_root(2)
# refuses rootfs, and passt's sandbox pivots its root like any container
# runtime; a plain chroot would not do either, as a chrooted process may
# not create a user namespace. (A real host's root is an ordinary mount.)
if [ "$L1_OFF_ROOTFS" != 1 ]; then
    mkdir -p /.root && mount --rbind / /.root && cd /.root && mount --move . / &&
        L1_OFF_ROOTFS=1 exec chroot . /init
    echo "L1: cannot leave rootfs (bind mount of / failed): passt cannot sandbox itself here"
fi
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TMPDIR=/tmp
read -r up _ </proc/uptime
echo "L1: userspace up at ${up}s"
# insmod, unlike kmod's modprobe, does not read /proc/cmdline: kvm_amd.P=V
# there (tools/nested-run's NESTED_L1_CMDLINE) is handed over here.
kvm_amd_args=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^kvm[-_]amd\.\([a-z_]*=[0-9A-Za-z]*\)$/\1/p' | tr '\n' ' ')
for m in irqbypass ccp kvm kvm-amd tun; do
    a=
    [ "$m" = kvm-amd ] && a=$kvm_amd_args
    # shellcheck disable=SC2086  # one word per parameter
    insmod "/lib/modules/l1/$m.ko" $a || echo "L1: insmod $m.ko $a failed"
done
if grep -qs 0x1af4 /sys/bus/pci/devices/*/vendor; then
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk; do
        insmod "/lib/modules/l1/$m.ko" || echo "L1: insmod $m.ko failed"
    done
    mdev -s 2>/dev/null
fi
if [ -c /dev/kvm ]; then
    echo "L1: /dev/kvm ready (kvm_amd npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null) vgif=$(cat /sys/module/kvm_amd/parameters/vgif 2>/dev/null))"
else
    echo "L1-ERROR: /dev/kvm is missing after loading kvm-amd (svm flag on $(grep -cw svm /proc/cpuinfo) of $(grep -c ^processor /proc/cpuinfo) CPUs): nothing can run KVM guests here"
fi
set -a
. /etc/l1-env
set +a
[ -x /usr/bin/kvmini ] && export KVMINI=/usr/bin/kvmini
[ -x /usr/bin/vmmstat ] && export VMMSTAT=/usr/bin/vmmstat
export PAYLOAD_FILES=/payload/files
status=125
if [ ! -x /payload/run ]; then
    echo "L1-ERROR: no /payload/run in the initramfs"
elif [ -f /payload/interactive ]; then
    # A new session with ttyS0 as its controlling terminal, so that the
    # script (kvmini) can put it in raw mode and gets Ctrl-C itself.
    setsid -c /payload/run </dev/ttyS0 >/dev/ttyS0 2>&1
    status=$?
else
    /payload/run </dev/null
    status=$?
fi
# stty sets modes with TCSADRAIN: everything written so far leaves the UART
# before the result line and before the power goes off.
stty -F /dev/ttyS0 "$(stty -F /dev/ttyS0 -g)" 2>/dev/null
echo "L1-EXIT=$status"
stty -F /dev/ttyS0 "$(stty -F /dev/ttyS0 -g)" 2>/dev/null
poweroff -f
EOF
    chmod 755 "$1"
}

cmd_base() {
    local with_qemu=0 env_lines key f m qemu=
    while [[ $# -gt 0 ]]; do
        case $1 in
        --with-qemu) with_qemu=1 ;;
        *) die "base: unknown argument '$1'" ;;
        esac
        shift
    done
    env_lines=$("$here/fetch-debian.sh" --print-env) || die "fetch-debian.sh failed"
    eval "$env_lines"
    local guest_initrd
    guest_initrd=$("$here/mkinitramfs.sh") || die "mkinitramfs.sh failed"
    local bash_bin
    bash_bin=$(command -v bash)

    local inputs=("$self" "$BUSYBOX" "$bash_bin" "$KERNEL" "$guest_initrd")
    for m in "${l1_modules[@]}" "${l1_disk_modules[@]}"; do inputs+=("$MODULES_DIR/kernel/$m"); done
    if [[ $with_qemu -eq 1 ]]; then
        qemu=$(command -v qemu-system-x86_64) ||
            die "--with-qemu: qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
        inputs+=("$qemu")
        for f in "${qemu_firmware[@]}"; do [[ -e $f ]] && inputs+=("$f"); done
    fi
    # Keyed by its inputs (name, size, mtime): rebuilt when one changes.
    key=$( { stat -L -c '%n %s %Y' "${inputs[@]}"; echo "$with_qemu"; } | sha256sum | cut -d' ' -f1)
    cache_build l1-base cpio "$key" build_base
}

# Writes the base archive to $1; sees cmd_base's locals (called from it
# through cache_build).
build_base() {
    local out=$1 stage f m
    echo "mkl1: building $out" >&2
    stage=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-l1.XXXXXX")
    # shellcheck disable=SC2064  # expand now: $stage is local
    trap "rm -rf '$stage'" EXIT
    mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,guest,lib/modules/l1}
    cp "$BUSYBOX" "$stage/bin/busybox"
    "$BUSYBOX" --list-full | while read -r applet; do
        [[ -e $stage/$applet || -L $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
    done
    rm -f "$stage/bin/bash"
    stage_bin "$stage" "$bash_bin" /bin/bash
    mknod -m 600 "$stage/dev/console" c 5 1 2>/dev/null || true
    for m in "${l1_modules[@]}" "${l1_disk_modules[@]}"; do
        cp "$MODULES_DIR/kernel/$m" "$stage/lib/modules/l1/"
    done
    cp "$KERNEL" "$stage/guest/vmlinuz-$KERNEL_VERSION"
    cp "$guest_initrd" "$stage/guest/initramfs.cpio"
    {
        echo "GUEST_KERNEL=/guest/vmlinuz-$KERNEL_VERSION"
        echo "GUEST_KERNEL_VERSION=$KERNEL_VERSION"
        echo "GUEST_INITRD=/guest/initramfs.cpio"
        [[ -n $qemu ]] && echo "QEMU=/usr/bin/qemu-system-x86_64"
    } > "$stage/etc/l1-env"
    # Accounts as on any host: passt started by root changes to "nobody";
    # the e2e cases run kvmini as the user 1000.
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'user:x:1000:1000:user:/tmp:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' > "$stage/etc/passwd"
    printf '%s\n' 'root:x:0:' 'user:x:1000:' 'nogroup:x:65534:' > "$stage/etc/group"
    if [[ -n $qemu ]]; then
        stage_bin "$stage" "$qemu" /usr/bin/qemu-system-x86_64
        for f in "${qemu_firmware[@]}"; do
            [[ -e $f ]] && stage_file "$stage" "$f" "$f"
        done
    fi
    write_l1_init "$stage/init"
    write_cpio "$stage" "$out"
    rm -rf "$stage"
    trap - EXIT
}

cmd_layer() {
    local out='' stage spec
    local bins=() files=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --out) [[ $# -ge 2 ]] || die "--out needs a file"; out=$2; shift ;;
        --bin) [[ $# -ge 2 && $2 == *:/* ]] || die "--bin needs SRC:/DEST"; bins+=("$2"); shift ;;
        --file) [[ $# -ge 2 && $2 == *:/* ]] || die "--file needs SRC:/DEST"; files+=("$2"); shift ;;
        *) die "layer: unknown argument '$1'" ;;
        esac
        shift
    done
    [[ -n $out ]] || die "layer: --out is required"
    stage=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-l1layer.XXXXXX")
    # shellcheck disable=SC2064  # expand now: $stage is local
    trap "rm -rf '$stage'" EXIT
    for spec in ${bins[@]+"${bins[@]}"}; do
        stage_bin "$stage" "${spec%:*}" "${spec##*:}"
    done
    for spec in ${files[@]+"${files[@]}"}; do
        [[ -e ${spec%:*} ]] || die "no such file: ${spec%:*}"
        stage_file "$stage" "${spec%:*}" "${spec##*:}"
    done
    write_cpio "$stage" "$out"
    rm -rf "$stage"
    trap - EXIT
}

case ${1:-} in
base) shift; cmd_base "$@" ;;
layer) shift; cmd_layer "$@" ;;
-h|--help) sed -n '2,27s/^# \{0,1\}//p' "$self" ;;
*) die "usage: mkl1.sh base [--with-qemu] | layer --out FILE [--bin SRC:DEST]... [--file SRC:DEST]... (see --help)" ;;
esac
