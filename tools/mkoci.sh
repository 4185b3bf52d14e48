#!/bin/bash
# mkoci.sh: build an OCI bundle (for `runc run`) whose container prints
# KVMINI-USERSPACE-UP and then runs busybox `true`: the container rows of
# tools/bootbench. The bundle is
#   DIR/rootfs       busybox-static at /bin/busybox and a link for every
#                    applet (/bin/sh, /bin/true, ...), plus the empty
#                    folders the runtime mounts on (proc, dev, sys, tmp)
#   DIR/config.json  `runc spec`'s default (namespaces pid, network, ipc,
#                    uts, mount; read-only root), adjusted: no terminal,
#                    an absolute root path (runc rejects a relative one
#                    reached through a symlinked folder), and the process
#                      /bin/sh -c 'echo KVMINI-USERSPACE-UP; exec /bin/true'
# The network namespace is new and empty (only lo, down): nothing is set up.
# Prints DIR.
#
# usage: tools/mkoci.sh [--busybox PATH] [--out DIR]
#   --busybox  a statically linked busybox (default $BUSYBOX, else
#              /bin/busybox from Debian's busybox-static)
#   --out      the bundle folder, made anew (default $KVMINI_CACHE/oci-busybox,
#              else .cache/oci-busybox in the repo)
# Needs runc (for `runc spec`) and sed; nothing else, so the nested L1 can
# run it too.
set -euo pipefail

LIB_PROG=mkoci
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox} out=
while [[ $# -gt 0 ]]; do
    case $1 in
    --busybox) [[ $# -ge 2 ]] || die "--busybox needs a path"; busybox=$2; shift ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a folder"; out=$2; shift ;;
    -h|--help) sed -n '2,23s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[[ -n $out ]] || out=${KVMINI_CACHE:-$here/../.cache}/oci-busybox
command -v runc >/dev/null || die "runc is missing (apt-get install runc)"
[[ -x $busybox ]] || die "no busybox at '$busybox' (apt-get install busybox-static)"
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
    die "'$busybox' is not statically linked: the container has no libraries"
fi

mkdir -p "$out"
out=$(cd "$out" && pwd -P)   # absolute, no symlinks: runc wants that
rm -rf "$out/rootfs" "$out/config.json"
mkdir -p "$out/rootfs"/{bin,sbin,usr/bin,usr/sbin,proc,dev,sys,tmp,etc,root}
cp -L "$busybox" "$out/rootfs/bin/busybox"
chmod 755 "$out/rootfs/bin/busybox"
"$busybox" --list-full | while read -r applet; do
    [[ -e $out/rootfs/$applet || -L $out/rootfs/$applet ]] || ln -s /bin/busybox "$out/rootfs/$applet"
done
[[ -e $out/rootfs/bin/sh ]] || ln -s busybox "$out/rootfs/bin/sh"

(cd "$out" && runc spec) || die "runc spec failed"
# runc spec's layout (runc 1.1): '"terminal": true,', an args list holding
# "sh" on its own line, '"path": "rootfs",'. Each edit is checked below.
sed -i \
    -e 's/"terminal": true/"terminal": false/' \
    -e '/"args": \[/,/\]/{s/^\([[:space:]]*\)"sh"$/\1"\/bin\/sh", "-c", "echo KVMINI-USERSPACE-UP; exec \/bin\/true"/}' \
    -e "s|\"path\": \"rootfs\"|\"path\": \"$out/rootfs\"|" \
    "$out/config.json"
grep -q '"terminal": false' "$out/config.json" || die "could not turn the terminal off in config.json"
grep -q 'echo KVMINI-USERSPACE-UP; exec /bin/true' "$out/config.json" || die "could not set the process args in config.json"
grep -q "\"path\": \"$out/rootfs\"" "$out/config.json" || die "could not set the root path in config.json"
echo "$out"
