# cases-fs.sh: host folders in the guest (--share, virtio-fs), sourced at
# the end of tests/e2e/l1-cases.sh in the nested L1. Uses its helpers
# pass, fail, want and its variables $vmm, $work, $k, $i, $case_timeout.
# The plain build with the seccomp filters on (the fs workers run under
# their own filter), the busybox initramfs, which mounts each share at
# /mnt/TAG. Each case checks what the host sees after the guest acted,
# and that nothing outside the shared folder changed.
# shellcheck shell=bash disable=SC2154

# One vCPU: see distro_cpus in cases-distro.sh (fs-swap froze L1 in CI
# with two, the guest's kernel spinning on a lock its sibling held).
fs_args=(--kernel "$k" --initrd "$i" --cpus 1 --memory 512M --cmdline "quiet" --quiet)

# fs_run NAME -- VMM_RUN_ARGS...: `vmm run ARGS`, stdin /dev/null. Sets
# $dir (out, err) and $st.
fs_run() {
    local name=$1
    shift 2
    st=0
    timeout -k 5 $((case_timeout * 2)) "$vmm" run "$@" < /dev/null > "$dir/out" 2> "$dir/err" || st=$?
    echo "    ($name: status $st)"
}

# chk WHAT GOT WANT: notes in $problems that GOT is not WANT.
chk() { [[ $2 == "$3" ]] || problems="$problems; $1: '$2', expected '$3'"; }
# fs_verdict NAME SUMMARY: the case fails with every problem noted, or
# passes and prints SUMMARY.
fs_verdict() {
    if [[ -n $problems ]]; then
        fail "$1" "${problems#; }" "$dir"
    else
        pass "$1"
        echo "$2"
    fi
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
    dd if=/dev/urandom of="$share/host-big" bs=1M count=256 2>/dev/null
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
cp host-big guest-big
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
# rm -rf lists a folder while it removes its entries (L1 tmpfs counts
# directory offsets from the start: a server that seeks skips entries).
mkdir many && i=0 && while [ $i -lt 600 ]; do : > many/file-$i; i=$((i + 1)); done
rm -rf many && echo RMRF-DONE
d=$(stat -c %d .)
echo "READAHEAD=$(cat /sys/class/bdi/$((d >> 8 & 4095)):$(( (d & 255) | (d >> 12 & 1048320) ))/read_ahead_kb)"
sync
echo GUEST-DONE'
    fs_run fs-share -- "${fs_args[@]}" --share "$share:data" --exec "$script"
    tree_state "$dir/canary" > "$dir/canary.after"
    outside=$(find "$dir" -mindepth 1 -maxdepth 1 ! -name share ! -name canary ! -name out ! -name err \
        ! -name 'canary.*')
    problems=
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
    chk big-round-trip "$(cmp "$share/host-big" "$share/guest-big" 2>&1)" ""
    chk owner "$(stat -c %u "$share/created.txt" 2>/dev/null)" "$(id -u)"
    chk unlinked-size "$(grep -o 'UNLINKED-SIZE=[0-9]*' "$dir/out")" UNLINKED-SIZE=15
    chk unlinked-data "$(grep -o 'UNLINKED-DATA=.*' "$dir/out")" UNLINKED-DATA=hello-unlinked
    chk unlinked-gone "$([[ -e $share/unlinked.txt ]] && echo present)" ""
    chk escapes "$(grep -o 'ESCAPE-[A-Z]* .*' "$dir/out" | tr '\n' ' ')" ""
    chk root-link "$(readlink "$share/rootlink")/$(grep -c WROTE-GUEST-TMP "$dir/out")" "//1"
    chk canary "$(diff "$dir/canary.before" "$dir/canary.after" | head -3)" ""
    chk outside "$outside" ""
    chk host-tmp "$([[ -e /tmp/through-root ]] && echo present)" ""
    chk rm-rf "$(grep -c RMRF-DONE "$dir/out")/$(ls "$share/many" 2>/dev/null | wc -l)" "1/0"
    chk readahead "$(grep -o 'READAHEAD=[0-9]*' "$dir/out")" READAHEAD=1024
    fs_verdict fs-share "    (fs-share: a 256 MiB file read, copied and compared on the host, 9 kinds of change seen on the host, open-unlink-fstat ok, 5 escape attempts harmless, canary unchanged, rm -rf of 600 files, 1 MiB read-ahead)"
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

# fsprobe (tests/e2e/fsprobe.c, static): xattrs, an atomic exchange and an
# open loop, which busybox lacks; run in L1 and, copied into a share, in
# the guest.
fs_probe=${PAYLOAD_FILES:-/payload/files}/fsprobe

if want fs-xattr; then
    # L1's tmpfs has no user xattrs before Linux 6.6: the share is an ext4
    # file system on a loop device.
    dir=$work/fs-xattr
    share=$dir/share
    mkdir -p "$share"
    why=
    [[ -x $fs_probe ]] || why="no fsprobe in L1 (run-nested.sh copies build/tests/e2e/fsprobe)"
    [[ -n $why ]] || l1_insmod crc16 mbcache jbd2 crc32c_generic ext4 loop || why=$l1_why
    if [[ -z $why ]]; then
        dd if=/dev/zero of="$dir/xattr.img" bs=1M count=32 2>/dev/null
        mke2fs -q -t ext4 -F "$dir/xattr.img" 2>/dev/null && mount -o loop "$dir/xattr.img" "$share" ||
            why="cannot mount an ext4 image on a loop device in L1"
    fi
    if [[ -n $why ]]; then
        fail fs-xattr "$why"
    else
        cp "$fs_probe" "$share/fsprobe"
        echo a > "$share/a.txt"
        echo b > "$share/b.txt"
        mkdir "$share/d"
        "$fs_probe" set "$share/b.txt" user.host set-by-host
        # shellcheck disable=SC2016  # expanded by the guest's shell
        script='cd /mnt/x
P=./fsprobe
$P set a.txt user.color blue
$P set a.txt user.color green
$P set d user.dir yes
$P set b.txt user.tmp gone
$P remove b.txt user.tmp
echo "GET-HOST=$($P get b.txt user.host)"
echo "GET=$($P get a.txt user.color)"
echo "LIST=$($P list a.txt | tr "\n" " ")"
# Only user.* is the guest'"'"'s: the others decide things on the host.
for n in trusted.evil security.capability system.posix_acl_access; do
    $P set a.txt $n 1 2>/dev/null && echo "SET-ALLOWED $n"
done
echo GUEST-DONE'
        fs_run fs-xattr -- "${fs_args[@]}" --share "$share:x" --exec "$script"
        problems=
        chk status "$st" 0
        grep -q GUEST-DONE "$dir/out" || problems="$problems; the guest's script did not finish"
        chk guest-get "$(grep -o 'GET=.*' "$dir/out" | head -n 1)" GET=green
        chk guest-get-host "$(grep -o 'GET-HOST=.*' "$dir/out" | head -n 1)" GET-HOST=set-by-host
        chk guest-list "$(grep -o 'LIST=.*' "$dir/out" | head -n 1 | tr -d '\r')" "LIST=user.color "
        chk host-replaced "$("$fs_probe" get "$share/a.txt" user.color 2>&1)" green
        chk host-dir "$("$fs_probe" get "$share/d" user.dir 2>&1)" yes
        chk host-removed "$("$fs_probe" list "$share/b.txt" 2>&1 | tr '\n' ' ')" "user.host "
        chk host-others "$("$fs_probe" list "$share/a.txt" 2>&1 | tr '\n' ' ')" "user.color "
        chk refused "$(grep -o 'SET-ALLOWED .*' "$dir/out" | tr '\n' ' ')" ""
        fs_verdict fs-xattr "    (fs-xattr: set, replace, get, list, remove seen on both sides (ext4 share); trusted/security/system names refused)"
    fi
    umount "$share" 2>/dev/null
fi

if want fs-swap; then
    # A symlink swapped in during lookups: the host exchanges the folder
    # swap (holding 'secret' with share content) with a symlink to the
    # canary folder outside the share, as fast as it can, while the guest
    # opens swap/secret in a loop with no caching (every open is a LOOKUP).
    # A server that resolved paths, or followed the link, would read the
    # canary's secret; kvmini's fds name the folder, and the guest resolves
    # a link it meets in its own file system (where it leads nowhere).
    dir=$work/fs-swap
    share=$dir/share
    mkdir -p "$share/swap"
    echo share-content > "$share/swap/secret"
    fs_canary "$share"
    ln -s "$dir/canary" "$share/swap-alt"
    if [[ ! -x $fs_probe ]]; then
        fail fs-swap "no fsprobe in L1 (run-nested.sh copies build/tests/e2e/fsprobe)"
    else
        cp "$fs_probe" "$share/fsprobe"
        "$fs_probe" exchange "$share/swap" "$share/swap-alt" 1000000000 200 2> "$dir/exchange.err" &
        swapper=$!
        fs_run fs-swap -- "${fs_args[@]}" --share "$share:data,cache=never" \
            --exec 'cd /mnt/data && ./fsprobe race swap/secret 2000 HOST-SECRET && echo GUEST-DONE'
        kill "$swapper" 2>/dev/null
        wait "$swapper" 2>/dev/null
        tree_state "$dir/canary" > "$dir/canary.after"
        race=$(grep -o 'RACE .*' "$dir/out" | tr -d '\r' | head -n 1)
        ok=$(echo "$race" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
        missing=$(echo "$race" | sed -n 's/.* missing=\([0-9]*\).*/\1/p')
        mark=$(echo "$race" | sed -n 's/.* mark=\([0-9]*\).*/\1/p')
        if [[ $st -ne 0 || -z $race ]]; then
            fail fs-swap "status $st, no RACE line from the guest" "$dir"
        elif [[ $mark != 0 ]]; then
            fail fs-swap "the guest read the host's secret through the swapped link: $race" "$dir"
        elif [[ ${ok:-0} -eq 0 || ${missing:-0} -eq 0 ]]; then
            fail fs-swap "the swap did not happen during the guest's lookups (both states must be seen): $race; exchanger: $(head -c 200 "$dir/exchange.err")" "$dir"
        elif ! diff -q "$dir/canary.before" "$dir/canary.after" >/dev/null; then
            fail fs-swap "the canary changed" "$dir"
        else
            pass fs-swap
            echo "    (fs-swap: $race: the folder read $ok times, the link met $missing times and resolved in the guest, never the host's secret)"
        fi
    fi
fi

if want fs-nested; then
    # Two shares, one a folder inside the other on the host: a change
    # through either is seen through the other, and '..' at the inner
    # share's root is the guest's /mnt, never the outer folder.
    dir=$work/fs-nested
    share=$dir/share
    mkdir -p "$share/sub"
    echo top > "$share/top-only.txt"
    # shellcheck disable=SC2016  # expanded by the guest's shell
    script='echo via-b > /mnt/b/from-b
echo via-a > /mnt/a/sub/from-a
echo "A-SEES=$(cat /mnt/a/sub/from-b)"
echo "B-SEES=$(cat /mnt/b/from-a)"
cd /mnt/b && cd .. && echo "UP=$(ls | tr "\n" " ")"
cat /mnt/b/../top-only.txt 2>/dev/null && echo ESCAPE-UP
echo GUEST-DONE'
    fs_run fs-nested -- "${fs_args[@]}" --share "$share:a" --share "$share/sub:b" --exec "$script" \
        --report "json:$dir/report.json"
    problems=
    chk status "$st" 0
    # --report counts each share's requests: two shares, each with its
    # INIT, and writes as CREATE (or MKNOD) and WRITE on the share written.
    chk report-shares "$(jq -r '[.shares[].tag] | join(",")' "$dir/report.json" 2>&1)" a,b
    chk report-init "$(jq -r '[.shares[].ops.INIT] | join(",")' "$dir/report.json" 2>&1)" 1,1
    chk report-writes "$(jq -r '[.shares[] | (.ops.WRITE // 0) > 0 and .requests > 5 and .interrupts > 0]
        | join(",")' "$dir/report.json" 2>&1)" true,true
    grep -q GUEST-DONE "$dir/out" || problems="$problems; the guest's script did not finish"
    chk a-sees "$(grep -o 'A-SEES=.*' "$dir/out" | tr -d '\r')" A-SEES=via-b
    chk b-sees "$(grep -o 'B-SEES=.*' "$dir/out" | tr -d '\r')" B-SEES=via-a
    chk host "$(cat "$share/sub/from-a" "$share/sub/from-b" 2>&1 | tr '\n' ' ')" "via-a via-b "
    chk up "$(grep -o 'UP=.*' "$dir/out" | tr -d '\r')" "UP=a b "
    chk escape "$(grep -c ESCAPE-UP "$dir/out")" 0
    fs_verdict fs-nested "    (fs-nested: a share inside another: changes seen through both, '..' of the inner one is the guest's /mnt; --report: $(jq -c '[.shares[] | {tag, requests, notifications}]' "$dir/report.json"))"
fi

if want fs-fds; then
    # FORGET frees: kvmini holds one O_PATH fd per inode the guest knows;
    # after the guest drops its caches (FORGET for each), kvmini's fd count
    # is back where it was, so a long run does not leak.
    dir=$work/fs-fds
    share=$dir/share
    mkdir -p "$share"
    # shellcheck disable=SC2016  # expanded by the guest's shell
    script='cd /mnt/data
echo PHASE-A; sleep 8
mkdir many && cd many && i=0
while [ $i -lt 1500 ]; do : > f$i; i=$((i + 1)); done
cd /mnt/data
ls -l many > /dev/null
echo PHASE-B; sleep 8
echo 3 > /proc/sys/vm/drop_caches
sleep 2; echo 3 > /proc/sys/vm/drop_caches
echo PHASE-C; sleep 8
echo GUEST-DONE'
    timeout -k 5 $((case_timeout * 2)) "$vmm" run "${fs_args[@]}" --share "$share:data" --exec "$script" \
        < /dev/null > "$dir/out" 2> "$dir/err" &
    runner=$!
    # fds_at PHASE: kvmini's open fds once the guest printed PHASE.
    fds_at() {
        local w=0 pid
        while ! grep -q "$1" "$dir/out" 2>/dev/null; do
            if ! kill -0 "$runner" 2>/dev/null || ((w++ >= 900)); then echo -; return; fi
            sleep 0.2
        done
        pid=$(procs_named kvmini)
        pid=${pid%% *}
        [[ -n $pid ]] && ls "/proc/$pid/fd" 2>/dev/null | wc -l || echo -
    }
    fa=$(fds_at PHASE-A) fb=$(fds_at PHASE-B) fc=$(fds_at PHASE-C)
    st=0
    wait "$runner" || st=$?
    echo "    (fs-fds: status $st; kvmini's fds: $fa at start, $fb with 1500 files known, $fc after the guest forgot them)"
    if [[ $st -ne 0 ]] || ! grep -q GUEST-DONE "$dir/out"; then
        fail fs-fds "status $st, the guest's script did not finish" "$dir"
    elif [[ $fa == - || $fb == - || $fc == - ]]; then
        fail fs-fds "could not count kvmini's fds at every phase ($fa, $fb, $fc)" "$dir"
    elif ((fb < fa + 1000)); then
        fail fs-fds "the 1500 files the guest knows do not show as kvmini fds ($fa -> $fb): the count proves nothing" "$dir"
    elif ((fc > fa + 16)); then
        fail fs-fds "fds not freed after the guest forgot its inodes: $fa at start, $fc after" "$dir"
    else
        pass fs-fds
    fi
fi
