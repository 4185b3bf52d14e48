#!/bin/bash
# mkdistro.sh: build a Debian 12 (bookworm) disk image that boots with
# systemd, the way a user's distribution does: debootstrap (minbase) from
# the Debian mirror apt on this machine is configured with, plus systemd,
# udev, initramfs-tools and the stock kernel package (linux-image-amd64,
# from the same suites apt uses, security updates included), so the image
# holds /boot/initrd.img-* made by initramfs-tools with the virtio drivers
# in it, and /lib/modules. The root file system is ext4 in a sparse raw
# image (no loop device: mkfs.ext4 -d). A serial getty comes from systemd
# on whatever console= names (ttyS0 by default, hvc0 with --console
# virtio).
#
# Output: a folder in the cache ($KVMINI_CACHE, default <repo>/.cache)
# holding root.img, vmlinuz and initrd.img (the image's own, copied out so
# the host can pass them to kvmini), keyed by this script, the mirror, the
# size and the password choice: built once, then reused. Prints the
# folder's path on stdout and, on stderr, the kvmini command that boots it.
#
# usage: tools/mkdistro.sh [--size SIZE] [--root-password PW | --no-password]
#   --size SIZE       the image's size (default 2G; sparse: about 700 MiB used)
#   --root-password   root's password in the image (default: none, with a
#                     warning: root logs in on the console without one)
# Needs root (debootstrap chroots and creates device nodes) and network
# access to the mirror.
set -euo pipefail

LIB_PROG=mkdistro
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export KVMINI_CACHE=${KVMINI_CACHE:-$here/../.cache}
suite=bookworm
size=2G password='' nopass=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --size) [[ ${2:-} =~ ^[0-9]+[MG]$ ]] || die "--size needs a size like 2G or 1500M"; size=$2; shift ;;
    --root-password) [[ -n ${2:-} ]] || die "--root-password needs a password"; password=$2; nopass=0; shift ;;
    --no-password) nopass=1; password= ;;
    -h|--help) sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

[[ $(id -u) -eq 0 ]] || die "needs root: debootstrap chroots into the new tree and creates device nodes (run it with sudo)"
export PATH=$PATH:/usr/sbin:/sbin
for t in debootstrap mkfs.ext4 e2fsck; do
    command -v "$t" >/dev/null || die "$t is missing: apt-get install debootstrap e2fsprogs"
done

# The mirrors apt uses here, as "deb URI SUITE main" lines: the first
# bookworm one for debootstrap, all of them (updates, security) for the
# kernel package inside.
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null |
          awk -v s="$suite" '$2 == s || index($2, s "-") == 1 { print "deb " $1 " " $2 " main" }' |
          sort -u)
mirror=$(awk -v s="$suite" '$3 == s { print $2; exit }' <<<"$sources")
[[ -n $mirror ]] || die "apt has no Debian $suite source configured (apt-get indextargets lists none): add one to /etc/apt/sources.list.d/ and run apt-get update"

# Writes the image folder to $1 (called by cache_build, under its lock).
build() {
    local out=$1 tree kver
    tree=$out.tree
    rm -rf "$tree" "$out"
    mkdir -p "$out"
    echo "mkdistro: debootstrap $suite from $mirror (a few minutes)" >&2
    debootstrap --variant=minbase \
        --include=systemd-sysv,udev,dbus,initramfs-tools,zstd,kmod,e2fsprogs,procps,ca-certificates \
        "$suite" "$tree" "$mirror" > "$out.debootstrap.log" 2>&1 ||
        { tail -20 "$out.debootstrap.log" >&2; die "debootstrap failed (log: $out.debootstrap.log)"; }
    printf '%s\n' "$sources" > "$tree/etc/apt/sources.list"
    # The kernel's initramfs: the virtio transports and disk, whatever
    # initramfs-tools guesses (MODULES=most), zstd like Debian's default.
    printf '%s\n' virtio_pci virtio_mmio virtio_blk virtio_console >> "$tree/etc/initramfs-tools/modules"
    echo "kvmini" > "$tree/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 kvmini\n' > "$tree/etc/hosts"
    echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" > "$tree/etc/fstab"
    # A template image: every boot of a copy gets its own machine id.
    : > "$tree/etc/machine-id"
    echo "mkdistro: installing linux-image-amd64 in the image" >&2
    mount -t proc proc "$tree/proc"
    # shellcheck disable=SC2064  # expand now
    trap "umount '$tree/proc' 2>/dev/null || true" RETURN
    if ! chroot "$tree" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq && apt-get install -y -qq --no-install-recommends linux-image-amd64 &&
            apt-get clean' > "$out.kernel.log" 2>&1; then
        tail -20 "$out.kernel.log" >&2
        die "installing the kernel in the image failed (log: $out.kernel.log)"
    fi
    if [[ $nopass -eq 1 ]]; then
        chroot "$tree" passwd -d root >/dev/null
    else
        printf 'root:%s\n' "$password" | chroot "$tree" chpasswd
    fi
    umount "$tree/proc"
    kver=$(basename "$(ls -d "$tree"/lib/modules/* | head -n 1)")
    [[ -f $tree/boot/vmlinuz-$kver && -f $tree/boot/initrd.img-$kver ]] ||
        die "the image has no /boot/vmlinuz-$kver and initrd.img-$kver"
    cp "$tree/boot/vmlinuz-$kver" "$out/vmlinuz"
    cp "$tree/boot/initrd.img-$kver" "$out/initrd.img"
    echo "$kver" > "$out/kernel-version"
    rm -f "$out/root.img"
    truncate -s "$size" "$out/root.img"
    mkfs.ext4 -q -L root -d "$tree" "$out/root.img" ||
        die "mkfs.ext4 -d could not build the image (is $size big enough?)"
    e2fsck -fn "$out/root.img" >/dev/null 2>&1 || die "the new image does not pass e2fsck -fn"
    rm -rf "$tree" "$out.debootstrap.log" "$out.kernel.log"
}

key=$( { cat "${BASH_SOURCE[0]}"; echo "$sources $size $nopass $password"; } | sha256sum | cut -d' ' -f1)
dir=$(cache_build "debian-$suite" d "$key" build)
if [[ $nopass -eq 1 ]]; then
    echo "mkdistro: WARNING: root has no password in this image: anyone at its console logs in as root (use --root-password for one)" >&2
fi
cat >&2 <<EOF
mkdistro: Debian $suite, kernel $(cat "$dir/kernel-version"), in $dir
boot it with (one disposable boot: add ,snapshot after root.img):
  kvmini run --kernel $dir/vmlinuz --initrd $dir/initrd.img --disk $dir/root.img \\
      --cpus 2 --memory 1G --cmdline 'root=/dev/vda rw'
EOF
echo "$dir"
