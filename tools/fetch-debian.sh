#!/bin/bash
# fetch-debian.sh: download and unpack Debian's stock kernel (the package
# linux-image-amd64 depends on) and locate a static busybox, into a cache
# folder. Idempotent: a second run finds everything in place and only prints.
#
# usage: tools/fetch-debian.sh [--print-env] [--cache DIR]
#   --print-env   print KEY=VALUE lines (shell-quoted) for `eval` or `source`:
#                 KVMINI_CACHE, KERNEL_PKG, KERNEL_VERSION, KERNEL (bzImage),
#                 VMLINUX (its ELF, unpacked), MODULES_DIR, BUSYBOX
#   --cache DIR   cache folder (default $KVMINI_CACHE, else <repo>/.cache)
# environment: KVMINI_KERNEL_PKG overrides the kernel package name.
set -euo pipefail

LIB_PROG=fetch-debian
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${KVMINI_CACHE:-$repo/.cache}
print_env=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --print-env) print_env=1 ;;
    --cache) [[ $# -ge 2 ]] || die "--cache needs a folder"; cache=$2; shift ;;
    -h|--help) sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# One fetch at a time per cache (parallel builds and tests share it).
exec 9> "$cache/.fetch-debian.lock"
flock 9

# The concrete package behind the linux-image-amd64 meta package.
pkg=${KVMINI_KERNEL_PKG:-}
# apt-cache takes a second: remember the answer until the package lists change.
resolved=$cache/kernel-pkg
if [[ -z $pkg && -s $resolved && $resolved -nt /var/lib/apt/lists ]]; then
    pkg=$(cat "$resolved")
fi
if [[ -z $pkg ]]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
    [[ -n $pkg ]] || die "apt-cache cannot resolve linux-image-amd64 (run 'apt-get update' first)"
    echo "$pkg" > "$resolved"
fi

# Download a package's .deb into $cache/debs and unpack it into $2 once.
# The stamp file is written last, so an interrupted run starts over.
fetch_pkg() {
    local name=$1 dest=$2 tmp deb
    [[ -f $dest/.unpacked ]] && return 0
    mkdir -p "$cache/debs"
    deb=$(find "$cache/debs" -maxdepth 1 -name "${name}_*.deb" -print -quit)
    if [[ -z $deb ]]; then
        echo "fetch-debian: downloading $name" >&2
        tmp=$(mktemp -d "$cache/debs/.dl.XXXXXX")
        chmod 0777 "$tmp"   # lets apt's sandbox user write there
        # apt-get download writes into the current folder.
        if ! (cd "$tmp" && apt-get download -q "$name" >&2); then
            rm -rf "$tmp"
            die "apt-get download $name failed"
        fi
        deb=$(find "$tmp" -maxdepth 1 -name "${name}_*.deb" -print -quit)
        [[ -n $deb ]] || { rm -rf "$tmp"; die "no .deb for $name after download"; }
        mv "$deb" "$cache/debs/"
        rm -rf "$tmp"
        deb=$cache/debs/$(basename "$deb")
    fi
    echo "fetch-debian: unpacking $(basename "$deb")" >&2
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$dest.tmp"
    dpkg -x "$deb" "$dest.tmp"
    touch "$dest.tmp/.unpacked"
    mv "$dest.tmp" "$dest"
}

kroot=$cache/$pkg
fetch_pkg "$pkg" "$kroot"
kernel=$(find "$kroot/boot" -maxdepth 1 -name 'vmlinuz-*' -print -quit)
[[ -n $kernel ]] || die "no boot/vmlinuz-* in $kroot"
version=${kernel##*/vmlinuz-}
modules=
for d in "$kroot/lib/modules/$version" "$kroot/usr/lib/modules/$version"; do
    [[ -d $d ]] && { modules=$d; break; }
done
[[ -n $modules ]] || die "no modules folder for $version in $kroot"

# The ELF vmlinux inside the bzImage (XZ payload; the logic of the kernel's
# scripts/extract-vmlinux), for booting the nested L1 through its PVH entry:
# under TCG the bzImage's own decompression costs L1 about 6 s.
vmlinux=$kroot/vmlinux-$version
if [[ ! -s $vmlinux ]]; then
    offsets=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kernel" | cut -d: -f1) || true
    for off in $offsets; do
        # xz complains about the data after the stream; the output is whole.
        tail -c "+$((off + 1))" "$kernel" | xz -dc > "$vmlinux.tmp" 2>/dev/null || true
        if [[ $(head -c 4 "$vmlinux.tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]]; then
            mv "$vmlinux.tmp" "$vmlinux"
            break
        fi
    done
    rm -f "$vmlinux.tmp"
    [[ -s $vmlinux ]] || die "cannot unpack the ELF vmlinux from $kernel"
fi

# busybox: the installed busybox-static if it is there, else its package.
busybox=
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    for b in /bin/busybox /usr/bin/busybox; do
        [[ -x $b ]] && { busybox=$b; break; }
    done
fi
if [[ -z $busybox ]]; then
    fetch_pkg busybox-static "$cache/busybox-static"
    busybox=$cache/busybox-static/bin/busybox
    [[ -x $busybox ]] || die "no bin/busybox in the busybox-static package"
fi

if [[ $print_env -eq 1 ]]; then
    printf 'KVMINI_CACHE=%q\n' "$cache"
    printf 'KERNEL_PKG=%q\n' "$pkg"
    printf 'KERNEL_VERSION=%q\n' "$version"
    printf 'KERNEL=%q\n' "$kernel"
    printf 'VMLINUX=%q\n' "$vmlinux"
    printf 'MODULES_DIR=%q\n' "$modules"
    printf 'BUSYBOX=%q\n' "$busybox"
else
    echo "cache:   $cache"
    echo "kernel:  $kernel ($version)"
    echo "vmlinux: $vmlinux"
    echo "modules: $modules"
    echo "busybox: $busybox"
fi
