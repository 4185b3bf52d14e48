# cases-init.sh: kvmini's own initramfs and built-in init (no --initrd,
# root= on the command line), sourced at the end of tests/e2e/l1-cases.sh
# in the nested L1. Uses its helpers pass, fail, want, boot, timed_out
# and its variables $vmm, $work, $k, $kver, $case_timeout, $vmlinux.
#
# The root is an ext4 image made here with mke2fs -d from a busybox tree;
# the guest kernel's modules come from guest-modules.tar (run-nested.sh:
# the modules this machine needs from Debian's package tree, virtio_blk
# and ext4 xz-compressed, never depmod'ed), given with --modules.
# shellcheck shell=bash disable=SC2154

# init_run NAME -- VMM_RUN_ARGS...: `vmm run ARGS` with stdin from
# /dev/null, bounded by the case timeout. Sets $dir (out, err) and $st.
init_run() {
    local name=$1
    shift 2
    dir=$work/$name
    mkdir -p "$dir"
    st=0
    timeout -k 5 "$case_timeout" "$vmm" run "$@" < /dev/null > "$dir/out" 2> "$dir/err" || st=$?
    echo "    ($name: status $st)"
}

init_tree=$work/init-modtree
init_img=$work/init-root.img
init_ready=
init_setup() {
    [[ -n $init_ready ]] && return "$init_ready"
    init_ready=1
    local tar=${PAYLOAD_FILES:-/payload/files}/guest-modules.tar tree=$work/init-rootfs a
    [[ -f $tar ]] || { init_why="no guest-modules.tar in L1 (run-nested.sh makes it)"; return 1; }
    command -v mke2fs >/dev/null || { init_why="mke2fs is missing in L1"; return 1; }
    mkdir -p "$init_tree" && tar -xf "$tar" -C "$init_tree" ||
        { init_why="cannot unpack guest-modules.tar"; return 1; }
    # A root with busybox only, the folders the init mounts on, the /etc
    # files it replaces, and the folder the cwd cases use.
    mkdir -p "$tree"/{bin,sbin,dev,proc,sys,run,tmp,root,etc,var/tmp,var/log,var/lib/misc,var/cache,srv/kvmini-proj}
    cp /bin/busybox "$tree/bin/busybox"
    for a in sh echo cat touch pwd grep ls mount rm sync id; do ln -s busybox "$tree/bin/$a"; done
    echo image-host > "$tree/etc/hostname"
    echo '127.0.0.1 image-host' > "$tree/etc/hosts"
    echo '/dev/vda / ext4 rw 0 1' > "$tree/etc/fstab"
    echo from-image > "$tree/var/lib/misc/state"
    echo proj-file > "$tree/srv/kvmini-proj/marker"
    rm -f "$init_img"
    truncate -s 64M "$init_img"
    mke2fs -q -t ext4 -d "$tree" "$init_img" || { init_why="mke2fs -d failed"; return 1; }
    mkdir -p /srv/kvmini-proj
    init_ready=0
}

init_args=(--kernel "$k" --modules "$init_tree" --cpus 1 --memory 256M)

if want init-exec; then
    # Status, stdout and stderr byte for byte, through the built-in init.
    if ! init_setup; then fail init-exec "$init_why"; else
        init_run init-exec -- "${init_args[@]}" --disk "$init_img" --cmdline "root=/dev/vda quiet" \
            --quiet --exec $'echo "out \'q\'"\necho err >&2\nexit 42'
        if [[ $st -ne 42 ]]; then
            fail init-exec "status $st, expected 42" "$dir"
        elif [[ $(cat "$dir/out") != "out 'q'" ]]; then
            fail init-exec "stdout '$(head -c 200 "$dir/out")', expected \"out 'q'\"" "$dir"
        elif [[ $(cat "$dir/err") != err ]]; then
            fail init-exec "stderr '$(head -c 300 "$dir/err")', expected 'err' alone (--quiet)" "$dir"
        else
            pass init-exec
        fi
    fi
fi

if want init-pvh; then
    # The ELF vmlinux: its release comes from the banner, not the bzImage header.
    if ! init_setup; then fail init-pvh "$init_why"; else
        pvh_init_args=("${init_args[@]}")
        pvh_init_args[1]=$vmlinux
        init_run init-pvh -- "${pvh_init_args[@]}" --disk "$init_img" --cmdline "root=/dev/vda quiet" \
            --quiet --exec 'cat /proc/sys/kernel/osrelease; exit 3'
        if [[ -z $vmlinux ]]; then
            fail init-pvh "no unpacked ELF vmlinux in ${PAYLOAD_FILES:-/payload/files}"
        elif [[ $st -ne 3 || $(cat "$dir/out") != "$kver" ]]; then
            fail init-pvh "status $st, stdout '$(head -c 100 "$dir/out")'; expected 3 and '$kver'" "$dir"
        else
            pass init-pvh
        fi
    fi
fi

if want init-cwd; then
    # The directory kvmini runs in, when the root has it; else /root;
    # --workdir is strict (126 when missing).
    if ! init_setup; then fail init-cwd "$init_why"; else
        bad=
        (cd /srv/kvmini-proj && init_run init-cwd-kept -- "${init_args[@]}" --disk "$init_img" \
            --cmdline "root=/dev/vda quiet" --quiet --exec 'pwd; cat marker'; echo "$st" > "$dir/st")
        d1=$work/init-cwd-kept
        [[ $(cat "$d1/st") == 0 && $(cat "$d1/out") == $'/srv/kvmini-proj\nproj-file' ]] ||
            bad="from /srv/kvmini-proj: status $(cat "$d1/st"), stdout '$(tr '\n' '|' < "$d1/out")'"
        if [[ -z $bad ]]; then
            (cd "$work" && init_run init-cwd-absent -- "${init_args[@]}" --disk "$init_img" \
                --cmdline "root=/dev/vda quiet" --quiet --exec 'pwd'; echo "$st" > "$dir/st")
            d1=$work/init-cwd-absent
            [[ $(cat "$d1/st") == 0 && $(cat "$d1/out") == /root ]] ||
                bad="from $work (not in the root): status $(cat "$d1/st"), stdout '$(cat "$d1/out")', expected /root"
        fi
        if [[ -z $bad ]]; then
            init_run init-cwd-strict -- "${init_args[@]}" --disk "$init_img" --workdir /nonexistent \
                --cmdline "root=/dev/vda quiet" --quiet --exec 'pwd'
            [[ $st -eq 126 ]] && grep -q /nonexistent "$dir/err" ||
                bad="--workdir /nonexistent: status $st (expected 126), stderr '$(head -c 200 "$dir/err")'"
        fi
        if [[ -n $bad ]]; then fail init-cwd "$bad" "$dir"; else pass init-cwd; fi
    fi
fi

if want init-readonly; then
    # The default mount plan: / read-only, /tmp writable, /var/lib an
    # overlay (its content visible and writable), /etc/hostname generated;
    # with --overlay /etc, /etc writable; the image unchanged afterwards.
    if ! init_setup; then fail init-readonly "$init_why"; else
        before=$(sha256sum "$init_img" | cut -d' ' -f1)
        init_run init-readonly -- "${init_args[@]}" --disk "$init_img" --overlay /etc \
            --cmdline "root=/dev/vda quiet" --quiet --exec '
if touch /written 2>/dev/null; then echo ROOT-WRITABLE; else echo ROOT-RO; fi
echo scratch > /tmp/t && cat /tmp/t
cat /var/lib/misc/state && echo changed > /var/lib/misc/state && cat /var/lib/misc/state
cat /etc/hostname
echo guest-edit > /etc/new-file && cat /etc/new-file
grep -c " / ext4 ro" /proc/mounts'
        after=$(sha256sum "$init_img" | cut -d' ' -f1)
        want_out=$'ROOT-RO\nscratch\nfrom-image\nchanged\nkvmini\nguest-edit\n1'
        if [[ $st -ne 0 ]]; then
            fail init-readonly "status $st, expected 0" "$dir"
        elif [[ $(cat "$dir/out") != "$want_out" ]]; then
            fail init-readonly "stdout '$(tr '\n' '|' < "$dir/out")', expected '$(tr '\n' '|' <<< "$want_out")'" "$dir"
        elif [[ $after != "$before" ]]; then
            fail init-readonly "the root image changed: sha256 $before -> $after" "$dir"
        else
            pass init-readonly
        fi
    fi
fi

if want init-rw; then
    # rw on the command line: writes reach the disk.
    if ! init_setup; then fail init-rw "$init_why"; else
        cp "$init_img" "$work/init-rw.img"
        init_run init-rw -- "${init_args[@]}" --disk "$work/init-rw.img" \
            --cmdline "root=/dev/vda rw quiet" --quiet --exec 'echo persisted > /written; cat /etc/hostname'
        got=$(debugfs -R 'cat /written' "$work/init-rw.img" 2>/dev/null)
        if [[ $st -ne 0 ]]; then
            fail init-rw "status $st, expected 0" "$dir"
        elif [[ $(cat "$dir/out") != image-host ]]; then
            fail init-rw "stdout '$(cat "$dir/out")', expected the image's own hostname" "$dir"
        elif [[ $got != persisted ]]; then
            fail init-rw "debugfs read '$got' from /written, expected 'persisted'" "$dir"
        else
            pass init-rw
        fi
    fi
fi

if want init-shell; then
    # No --exec and no /sbin/init in the root: a shell on the console,
    # and kvmini exits 0 when it ends.
    if ! init_setup; then fail init-shell "$init_why"; else
        # shellcheck disable=SC2016  # expanded by the guest's shell
        boot init-shell prompt 'echo SUM=$((6*7)) $(cat /etc/hostname)\nexit\n' -- "${init_args[@]}" \
            --disk "$init_img" --cmdline "console=ttyS0 root=/dev/vda quiet"
        if timed_out; then
            fail init-shell "timed out after ${case_timeout}s (status $st)" "$dir"
        elif ! grep -q 'SUM=42 kvmini' "$dir/txt"; then
            fail init-shell "no 'SUM=42 kvmini' from the guest shell" "$dir"
        elif [[ $st -ne 0 ]]; then
            fail init-shell "status $st after the shell exited, expected 0" "$dir"
        else
            pass init-shell
        fi
    fi
fi

if want init-no-modules; then
    # A module tree that lacks a needed module, and none at all: one line,
    # status 125, before the VM starts.
    if ! init_setup; then fail init-no-modules "$init_why"; else
        bad=
        rm -rf "$work/init-modtree-novblk"
        cp -a "$init_tree" "$work/init-modtree-novblk"
        rm -f "$work/init-modtree-novblk"/kernel/drivers/block/virtio_blk.ko*
        if [[ -n $(find "$work/init-modtree-novblk" -name 'virtio_blk.ko*') ]]; then
            fail init-no-modules "could not remove virtio_blk from the test's module tree"
        fi
        init_run init-no-vblk -- --kernel "$k" --modules "$work/init-modtree-novblk" --disk "$init_img" \
            --cmdline "root=/dev/vda" --exec true
        [[ $st -eq 125 && $(wc -l < "$dir/err") -eq 1 ]] && grep -q "virtio_blk" "$dir/err" &&
            grep -q "init-modtree-novblk" "$dir/err" ||
            bad="no virtio_blk: status $st, stderr '$(head -c 300 "$dir/err")'"
        if [[ -z $bad ]]; then
            # L1 has no /lib/modules/RELEASE: kvmini says where it looked.
            init_run init-no-tree -- --kernel "$k" --disk "$init_img" --cmdline "root=/dev/vda" --exec true
            [[ $st -eq 125 && $(wc -l < "$dir/err") -eq 1 ]] && grep -q "/lib/modules/$kver" "$dir/err" ||
                bad="no tree: status $st, stderr '$(head -c 300 "$dir/err")'"
        fi
        if [[ -n $bad ]]; then fail init-no-modules "$bad" "$dir"; else pass init-no-modules; fi
    fi
fi
