# cases-fs.sh: host folders in the guest (--share, virtio-fs), sourced at
# the end of tests/e2e/l1-cases.sh in the nested L1. Uses its helpers
# pass, fail, want and its variables $vmm, $work, $k, $i, $case_timeout.
# The plain build with the seccomp filters on (the fs workers run under
# their own filter), the busybox initramfs, which mounts each share at
# /mnt/TAG. Each case checks what the host sees after the guest acted,
# and that nothing outside the shared folder changed.
# shellcheck shell=bash disable=SC2154

fs_args=(--kernel "$k" --initrd "$i" --cpus 2 --memory 512M --cmdline "quiet" --quiet)

# fs_run NAME -- VMM_RUN_ARGS...: `vmm run ARGS`, stdin /dev/null. Sets
# $dir (out, err) and $st.
fs_run() {
    local name=$1
    shift 2
    st=0
    timeout -k 5 $((case_timeout * 2)) "$vmm" run "$@" < /dev/null > "$dir/out" 2> "$dir/err" || st=$?
    echo "    ($name: status $st)"
}

# tree_state DIR: every path under DIR with its type, size, mode, mtime
# and content hash: equal output means nothing changed.
tree_state() {
    (cd "$1" && find . | LC_ALL=C sort | while read -r p; do
        if [[ -L $p ]]; then echo "$p L $(readlink "$p")"
        elif [[ -f $p ]]; then echo "$p F $(stat -c '%s %a %Y' "$p") $(sha256sum < "$p" | cut -c1-16)"
        else echo "$p D $(stat -c '%a %Y' "$p")"; fi
    done)
}

# The canary: a host tree beside the share, with a secret; the share
# holds links that point at it (absolute, relative, through /proc).
fs_canary() {
    mkdir -p "$dir/canary/sub"
    echo "HOST-SECRET-$$" > "$dir/canary/secret"
    echo keep > "$dir/canary/sub/file"
    ln -s "$dir/canary/secret" "$1/abs-link"
    ln -s ../canary/secret "$1/rel-link"
    ln -s /proc/self/root/etc "$1/magic-link"
    ln -s "$dir/canary" "$1/dir-link"
    tree_state "$dir/canary" > "$dir/canary.before"
}

if want fs-share; then
    dir=$work/fs-share
    share=$dir/share
    mkdir -p "$share/sub"
    dd if=/dev/urandom of="$share/host-big" bs=1M count=64 2>/dev/null
    echo "sub file" > "$share/sub/b.txt"
    echo one > "$share/app.txt"
    echo 0123456789 > "$share/trunc.txt"
    echo rename-me > "$share/ren-src.txt"
    echo bye > "$share/gone.txt"
    fs_canary "$share"
    host_sums=$(cd "$share" && sha256sum host-big sub/b.txt)
    # shellcheck disable=SC2016  # expanded by the guest's shell
    script='set -e
cd /mnt/data
sha256sum host-big sub/b.txt > guest-sums
echo created > created.txt
echo two >> app.txt
truncate -s 3 trunc.txt
mv ren-src.txt ren-dst.txt
ln created.txt hard.txt
ln -s created.txt sym.txt
rm gone.txt
mkdir -p newdir/deeper && echo deep > newdir/deeper/f
dd if=/dev/urandom of=guest-big bs=1M count=64 2>/dev/null
sha256sum guest-big > guest-big.sum
# open, unlink, then fstat and read through the open file (9p loses it)
exec 3<>unlinked.txt
echo hello-unlinked >&3
rm unlinked.txt
echo "UNLINKED-SIZE=$(stat -L -c %s /proc/self/fd/3)"
echo "UNLINKED-DATA=$(cat /proc/self/fd/3)"
exec 3>&-
# Escapes: each link resolves in the guest, never on the host.
for l in abs-link rel-link magic-link/hostname dir-link/secret ../data/../../canary/secret; do
    if cat "$l" 2>/dev/null | grep -q HOST-SECRET; then echo "ESCAPE-READ $l"; fi
done
echo x > dir-link/planted 2>/dev/null && echo "ESCAPE-WRITE dir-link" || true
ln -s / rootlink && echo x > rootlink/tmp/through-root && echo "WROTE-GUEST-TMP"
ls -a / > /dev/null
sync
echo GUEST-DONE'
    fs_run fs-share -- "${fs_args[@]}" --share "$share:data" --exec "$script"
    tree_state "$dir/canary" > "$dir/canary.after"
    outside=$(find "$dir" -mindepth 1 -maxdepth 1 ! -name share ! -name canary ! -name out ! -name err \
        ! -name 'canary.*')
    problems=
    chk() { [[ $2 == "$3" ]] || problems="$problems; $1: '$2', expected '$3'"; }
    chk status "$st" 0
    grep -q GUEST-DONE "$dir/out" || problems="$problems; the guest's script did not finish"
    chk sums "$(cat "$share/guest-sums" 2>/dev/null)" "$host_sums"
    chk created "$(cat "$share/created.txt" 2>/dev/null)" created
    chk append "$(cat "$share/app.txt" 2>/dev/null | tr '\n' ' ')" "one two "
    chk truncate "$(stat -c %s "$share/trunc.txt" 2>/dev/null)" 3
    chk rename "$(cat "$share/ren-dst.txt" 2>/dev/null)/$([[ -e $share/ren-src.txt ]] && echo still)" "rename-me/"
    chk hardlink "$(stat -c '%h %i' "$share/hard.txt" 2>/dev/null)" "2 $(stat -c %i "$share/created.txt" 2>/dev/null)"
    chk symlink "$(readlink "$share/sym.txt")" created.txt
    chk remove "$([[ -e $share/gone.txt ]] && echo present)" ""
    chk mkdir "$(cat "$share/newdir/deeper/f" 2>/dev/null)" deep
    chk big "$(cd "$share" && sha256sum guest-big 2>/dev/null)" "$(cat "$share/guest-big.sum" 2>/dev/null)"
    chk owner "$(stat -c %u "$share/created.txt" 2>/dev/null)" "$(id -u)"
    chk unlinked-size "$(grep -o 'UNLINKED-SIZE=[0-9]*' "$dir/out")" UNLINKED-SIZE=15
    chk unlinked-data "$(grep -o 'UNLINKED-DATA=.*' "$dir/out")" UNLINKED-DATA=hello-unlinked
    chk unlinked-gone "$([[ -e $share/unlinked.txt ]] && echo present)" ""
    chk escapes "$(grep -o 'ESCAPE-[A-Z]* .*' "$dir/out" | tr '\n' ' ')" ""
    chk root-link "$(readlink "$share/rootlink")/$(grep -c WROTE-GUEST-TMP "$dir/out")" "//1"
    chk canary "$(diff "$dir/canary.before" "$dir/canary.after" | head -3)" ""
    chk outside "$outside" ""
    chk host-tmp "$([[ -e /tmp/through-root ]] && echo present)" ""
    if [[ -n $problems ]]; then
        fail fs-share "${problems#; }" "$dir"
    else
        pass fs-share
        echo "    (fs-share: 64 MiB each way, 9 kinds of change seen on the host, open-unlink-fstat ok, 5 escape attempts harmless, canary unchanged)"
    fi
fi

if want fs-ro; then
    dir=$work/fs-ro
    share=$dir/share
    mkdir -p "$share/d"
    echo keep > "$share/f"
    echo inner > "$share/d/g"
    touch -d '2020-01-02 03:04:05' "$share/f" "$share/d/g" "$share/d" "$share"
    tree_state "$share" > "$dir/before"
    # shellcheck disable=SC2016  # expanded by the guest's shell
    script='cd /mnt/ro
try() { if "$@" 2>/dev/null; then echo "WROTE: $*"; fi; }
try sh -c "echo x > f"
try sh -c "echo x >> f"
try sh -c "echo x > new"
try rm f
try mkdir nd
try mv f f2
try ln f hl
try ln -s f sl
try touch f
try chmod 600 f
try truncate -s 0 f
try rmdir d
# The device refuses writes, not only the mount: remount read-write.
mount -o remount,rw /mnt/ro 2>/dev/null && echo REMOUNTED-RW
try sh -c "echo x > f"
try sh -c "echo x > new2"
try rm d/g
try mkdir nd2
try touch f
cat f d/g
echo GUEST-DONE'
    fs_run fs-ro -- "${fs_args[@]}" --share "$share:ro,ro" --exec "$script"
    tree_state "$share" > "$dir/after"
    if [[ $st -ne 0 ]] || ! grep -q GUEST-DONE "$dir/out"; then
        fail fs-ro "status $st, the guest's script did not finish" "$dir"
    elif grep -q '^WROTE' "$dir/out"; then
        fail fs-ro "a write went through a ro share: $(grep '^WROTE' "$dir/out" | head -3 | tr '\n' ' ')" "$dir"
    elif ! diff -q "$dir/before" "$dir/after" >/dev/null; then
        fail fs-ro "the host folder changed: $(diff "$dir/before" "$dir/after" | head -4 | tr '\n' ' ')" "$dir"
    elif [[ $(grep -c -e '^keep$' -e '^inner$' "$dir/out") -ne 2 ]]; then
        fail fs-ro "the guest could not read the ro share" "$dir"
    else
        pass fs-ro
        echo "    (fs-ro: 17 writes refused$(grep -q REMOUNTED-RW "$dir/out" && echo ', also after a remount rw'), content and mtimes unchanged)"
    fi
fi
