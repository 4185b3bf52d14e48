# cases-rootfs.sh: --rootfs DIR, the host's own userland as the guest's
# root over virtio-fs with kvmini's built-in init and no --initrd,
# sourced at the end of tests/e2e/l1-cases.sh in the nested L1 after
# cases-init.sh (its init_setup, init_run, init_tree: the guest kernel's
# modules, given with --modules since L1 has no /lib/modules). The root
# shared is L1's own: busybox and the test payload.
# shellcheck shell=bash disable=SC2154

rootfs_args=(--kernel "$k" --modules "$init_tree" --cpus 1 --memory 256M --cmdline quiet --quiet)

if want rootfs-exec; then
    # L1's own userland runs the command, in this directory, with the
    # status back; / is read-only, /tmp is the guest's and vanishes.
    if ! init_setup; then fail rootfs-exec "$init_why"; else
        echo "l1-marker-$$" > /srv/kvmini-proj/l1-marker
        rm -f /rootfs-probe /srv/kvmini-proj/tmp-probe
        rm -rf /tmp/kvmini-out && mkdir -p /tmp/kvmini-out
        # A distribution's root has /mnt, L1's bare one not: shares go
        # under it (a read-only root cannot get it in the guest).
        mkdir -p /mnt
        # shellcheck disable=SC2016  # expanded by the guest's shell
        cd /srv/kvmini-proj || exit 1
        init_run rootfs-exec -- "${rootfs_args[@]}" --rootfs / --share /tmp/kvmini-out:out --exec \
            'echo "PWD=$(pwd)"; echo "MARK=$(cat l1-marker)"
echo x > /rootfs-probe 2>/dev/null && echo ROOT-WRITABLE
echo t > /tmp/tmp-probe && echo "TMP=$(cat /tmp/tmp-probe)"
echo "ROOTFS=$(awk '"'"'$2 == "/" { t = $3 " " substr($4, 1, 2) } END { print t }'"'"' /proc/mounts)"
d=$(stat -c %d /); echo "RA=$(cat /sys/class/bdi/$((d >> 8 & 4095)):$(( (d & 255) | (d >> 12 & 1048320) ))/read_ahead_kb)"
echo "result-$$" > /mnt/out/result
exit 7'
        cd - >/dev/null || exit 1
        dir=$work/rootfs-exec
        out=$(tr '\n' '|' < "$dir/out")
        want_out="PWD=/srv/kvmini-proj|MARK=l1-marker-$$|TMP=t|ROOTFS=virtiofs ro|RA=1024|"
        if [[ $st -ne 7 ]]; then
            fail rootfs-exec "status $st, expected 7" "$dir"
        elif [[ $out != "$want_out" ]]; then
            fail rootfs-exec "stdout '$out', expected '$want_out'" "$dir"
        elif [[ -e /rootfs-probe || -e /tmp/tmp-probe ]]; then
            fail rootfs-exec "the guest's writes reached L1's root" "$dir"
        elif ! grep -q '^result-[0-9]*$' /tmp/kvmini-out/result 2>/dev/null; then
            fail rootfs-exec "--share next to --rootfs: /mnt/out/result did not reach L1 ('$(head -c 80 /tmp/kvmini-out/result 2>&1)')" "$dir"
        else
            pass rootfs-exec
        fi
    fi
fi

if want rootfs-overlay-rw; then
    # --overlay: the guest edits /etc, L1 never sees it. ,rw: writes
    # go through to the host folder.
    if ! init_setup; then fail rootfs-overlay-rw "$init_why"; else
        rm -f /etc/kvmini-ovl /srv/kvmini-proj/written-through
        init_run rootfs-overlay -- "${rootfs_args[@]}" --rootfs / --overlay /etc \
            --exec 'echo edited > /etc/kvmini-ovl && cat /etc/kvmini-ovl'
        st1=$st out1=$(cat "$work/rootfs-overlay/out")
        init_run rootfs-rw -- "${rootfs_args[@]}" --rootfs /,rw \
            --exec 'echo through > /srv/kvmini-proj/written-through'
        dir=$work/rootfs-rw
        if [[ $st1 -ne 0 || $out1 != edited ]]; then
            fail rootfs-overlay-rw "--overlay /etc: status $st1, stdout '$out1'" "$work/rootfs-overlay"
        elif [[ -e /etc/kvmini-ovl ]]; then
            fail rootfs-overlay-rw "--overlay /etc: the edit reached L1's /etc" "$work/rootfs-overlay"
        elif [[ $st -ne 0 || $(cat /srv/kvmini-proj/written-through 2>/dev/null) != through ]]; then
            fail rootfs-overlay-rw "--rootfs /,rw: status $st, the write did not reach L1" "$dir"
        else
            pass rootfs-overlay-rw
        fi
    fi
fi
