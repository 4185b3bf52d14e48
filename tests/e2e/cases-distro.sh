# cases-distro.sh: a real distribution on kvmini, sourced by l1-cases.sh in
# the nested L1. L1's /dev/vda is the Debian 12 image tools/mkdistro.sh
# builds (systemd, udev, initramfs-tools, the stock kernel package), given
# to L1 by run-nested.sh --distro; L1's writes to it are thrown away.
#
#   distro-boot      the image's own kernel and initrd (initramfs-tools),
#                    root on virtio-blk, 1 vCPU, the plain kvmini with its
#                    seccomp filters: multi-user reached, a root login on
#                    ttyS0, no failed unit, systemd-analyze works, no kernel
#                    WARNING/BUG, the RTC set the clock (within a few seconds
#                    of L1's), kvm-clock, PAT on; `poweroff` ends kvmini with
#                    0 (stop reason poweroff), and e2fsck -fn finds the file
#                    system clean afterwards
#   distro-exec      --exec on the disk root through kvmini's own init: under
#                    the image's systemd (--exec-boot auto picks it), the
#                    command's output and status come back, the system shuts
#                    down cleanly; on ,snapshot so the image stays
#                    byte-identical (checksum before and after); and the
#                    direct mode on the same image
#   distro-rootfs    the image's tree as --rootfs (mounted read-only in L1,
#                    served by kvmini's virtio-fs, kvmini's own initramfs
#                    from the image's modules): --exec runs Debian's own
#                    bash -c, sha256sum and dpkg -l; without --exec the
#                    tree's systemd boots as PID 1 to a root login, and
#                    `poweroff` ends kvmini with 0
# The kernel, initrd and the few modules kvmini's own initramfs needs are
# read out of the image with debugfs (nothing is mounted in L1).

# shellcheck source=../../tools/guest-session.sh
source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
distro_timeout=${DISTRO_TIMEOUT:-600}
# One vCPU. With two, on L1's one CPU, a guest CPU spinning on a lock or
# an IPI its sibling holds needs L1's timer to let the sibling run; the
# emulated AMD-V sometimes stops delivering it, and L1 froze whole (CI:
# the guest's kernel in one spin loop for 600 s, in distro-boot and
# fs-swap). Several vCPUs are still booted by the short cases
# (bzimage-2cpu, pvh-bzimage, asan-boot, reliability's 12).
distro_cpus=1
distro_dir=$work/distro
distro_why=

distro_setup() {
    local ls ver d
    [[ -b /dev/vda ]] || { distro_why="L1 has no /dev/vda: run-nested.sh --distro gives it the image"; return 1; }
    mkdir -p "$distro_dir/mods"
    ls=$(debugfs -R "ls -p /boot" /dev/vda 2>/dev/null) ||
        { distro_why="debugfs cannot read /dev/vda (not the ext4 image?)"; return 1; }
    ver=$(tr '/' '\n' <<<"$ls" | sed -n 's/^vmlinuz-//p' | head -n 1)
    [[ -n $ver ]] || { distro_why="no /boot/vmlinuz-* in the image"; return 1; }
    distro_kver=$ver
    debugfs -R "dump /boot/vmlinuz-$ver $distro_dir/vmlinuz" /dev/vda 2>/dev/null
    debugfs -R "dump /boot/initrd.img-$ver $distro_dir/initrd.img" /dev/vda 2>/dev/null
    [[ -s $distro_dir/vmlinuz && -s $distro_dir/initrd.img ]] ||
        { distro_why="cannot copy the kernel and initrd out of the image"; return 1; }
    # kvmini's own initramfs (distro-exec) takes the disk's drivers from
    # the image's own module tree: the folders they live in.
    for d in drivers/virtio drivers/block drivers/char drivers/misc/pvpanic fs/ext4 fs/jbd2 \
             fs/overlayfs fs/fuse lib crypto arch/x86/crypto; do
        mkdir -p "$distro_dir/mods/kernel/$(dirname "$d")"
        debugfs -R "rdump /lib/modules/$ver/kernel/$d $distro_dir/mods/kernel/$(dirname "$d")" /dev/vda 2>/dev/null
    done
    debugfs -R "dump /lib/modules/$ver/kernel/fs/mbcache.ko $distro_dir/mods/kernel/fs/mbcache.ko" /dev/vda 2>/dev/null
    for f in modules.builtin modules.order modules.dep; do
        debugfs -R "dump /lib/modules/$ver/$f $distro_dir/mods/$f" /dev/vda 2>/dev/null
    done
    [[ -n $(find "$distro_dir/mods" -name 'virtio_blk.ko*') ]] ||
        { distro_why="the image's module tree has no virtio_blk"; return 1; }
    return 0
}

distro_fail_all() {
    local c
    for c in distro-boot distro-exec distro-rootfs; do
        want "$c" && fail "$c" "cannot set up: $distro_why"
    done
}

# distro_await ERE STEP: the console shows ERE; or the VMM is stopped and
# distro-boot fails naming the step that did not come and the console's
# last line (a wait never outlasts the VMM, which timeout ends).
distro_await() {
    session_expect "$1" && return 0
    session_send '\001x'
    session_end
    fail "${distro_case:-distro-boot}" "$2 did not come (kvmini status $st; the console's last line: '$(grep -av '^$' "$dir/txt" | tail -n 1 | cut -c1-120)')" "$dir"
    return 1
}

distro_boot_case() {
    local t_before t_after clock n
    dir=$work/distro-boot
    session_timeout=$distro_timeout
    session_start "$dir" "$vmm" run --kernel "$distro_dir/vmlinuz" --initrd "$distro_dir/initrd.img" \
        --disk /dev/vda --cpus "$distro_cpus" --memory 1G --cmdline 'root=/dev/vda rw' \
        --report "json:$dir/report.json"
    session_watch distro-boot
    distro_await ' login: ' "the login prompt on ttyS0" || return
    echo "    (distro-boot: login prompt after $(cut -d' ' -f1 /proc/uptime)s of L1 uptime)"
    session_send 'root\n'
    # The prompt, wherever it is: kernel messages may follow it.
    distro_await 'root@[^ ]*:~# ' "a root shell prompt after logging in as root" || return
    # From here on the console is the shell's alone.
    session_send 'dmesg -n 1\n'
    # shellcheck disable=SC2016  # expanded by the guest's shell
    session_send 'echo STATE=$(systemctl is-system-running --wait)\n'
    distro_await '^STATE=' "the answer of systemctl is-system-running --wait" || return
    # shellcheck disable=SC2016
    session_send 'echo NFAILED=$(systemctl --failed --no-legend --plain | wc -l); systemctl --failed --no-legend --plain | sed "s/^/FAILEDUNIT=/"\n'
    distro_await '^NFAILED=' "the list of failed units" || return
    # shellcheck disable=SC2016
    # The one warning the emulated L1 causes whatever the VMM (QEMU -cpu
    # host gets it too, kvmini --cpu host and default alike: L1's CPUID
    # leaf 0xD sizes are inconsistent) is reported, not counted.
    session_send 'echo XSAVEWARN=$(dmesg | grep -c "WARNING:.*fpu__init_system_xstate"); echo ANALYZE=$(systemd-analyze | head -n 1); echo NWARN=$(dmesg | grep -E "WARNING:|BUG:" | grep -vc "fpu__init_system_xstate"); dmesg | grep -E "WARNING:|BUG:" | sed "s/^/KWARN=/"\n'
    distro_await '^NWARN=' "systemd-analyze and the kernel log's warnings" || return
    # shellcheck disable=SC2016
    session_send 'echo CS=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) PAT=$(dmesg | grep -c "x86/PAT: Configuration") RTC=$(ls /sys/class/rtc | head -n 1) RTCSET=$(dmesg | grep -c "rtc_cmos.*setting system clock")\n'
    distro_await '^CS=' "the clock source, PAT and RTC lines" || return
    t_before=$(date +%s)
    # shellcheck disable=SC2016
    session_send 'echo CLOCK=$(date +%s)\n'
    distro_await '^CLOCK=' "the guest's clock" || return
    t_after=$(date +%s)
    session_send 'poweroff\n'
    session_end
    clock=$(session_value CLOCK)
    n=$(session_value NFAILED)
    local e2fsck_out
    e2fsck_out=$(e2fsck -fn /dev/vda 2>&1)
    local e2fsck_st=$?
    local reason
    reason=$(jq -r .stop_reason "$dir/report.json" 2>/dev/null)
    grep -a '^FAILEDUNIT=\|^KWARN=' "$dir/txt" | sed 's/^/    | /'
    if [[ $(session_value STATE) != running ]]; then
        fail distro-boot "systemctl is-system-running says '$(session_value STATE)', expected running" "$dir"
    elif [[ $n != 0 ]]; then
        fail distro-boot "$n failed units (listed above)" "$dir"
    elif [[ $(session_value ANALYZE) != Startup\ finished* ]]; then
        fail distro-boot "systemd-analyze said '$(session_value ANALYZE)'" "$dir"
    elif [[ $(session_value NWARN) != 0 ]]; then
        fail distro-boot "the kernel log has $(session_value NWARN) WARNING/BUG lines (above)" "$dir"
    elif ! grep -qa '^CS=kvm-clock PAT=1 RTC=rtc0 RTCSET=1' "$dir/txt"; then
        fail distro-boot "platform: got '$(grep -a '^CS=' "$dir/txt" | tail -n 1)', expected kvm-clock, PAT configured, rtc0 that set the clock" "$dir"
    elif [[ -z $clock ]] || ((clock < t_before - 3 || clock > t_after + 3)); then
        fail distro-boot "the guest's clock said ${clock:-nothing}, L1's was $t_before..$t_after" "$dir"
    elif [[ $st -ne 0 || $reason != poweroff ]]; then
        fail distro-boot "kvmini exited $st (stop reason '$reason') after poweroff, expected 0 and poweroff" "$dir"
    elif [[ $e2fsck_st -ne 0 ]]; then
        fail distro-boot "e2fsck -fn after the guest's poweroff: status $e2fsck_st: $(tail -n 3 <<<"$e2fsck_out" | tr '\n' ' ')" "$dir"
    else
        pass distro-boot
        echo "    (distro-boot: $(session_value ANALYZE | cut -c1-150); clock L1 $t_before..$t_after guest $clock)"
        [[ $(session_value XSAVEWARN) == 0 ]] ||
            echo "    (distro-boot: the guest kernel warned 'XSAVE consistency problem' (fpu__init_system_xstate): the emulated L1's CPUID, seen with QEMU -cpu host too; not counted)"
    fi
}

distro_exec_case() {
    local sum_before sum_after out n
    dir=$work/distro-exec
    mkdir -p "$dir"
    local t0=$SECONDS
    sum_before=$(md5sum < /dev/vda)
    echo "    (distro-exec: the image's checksum took $((SECONDS - t0)) s; booting it under systemd)"
    t0=$SECONDS
    # shellcheck disable=SC2016  # expanded by the guest's shell
    timeout -k 5 "$distro_timeout" "$vmm" run --kernel "$distro_dir/vmlinuz" --modules "$distro_dir/mods" \
        --disk /dev/vda,snapshot --cpus "$distro_cpus" --memory 1G --cmdline root=/dev/vda \
        --report "json:$dir/report.json" \
        --exec 'echo STATE=$(systemctl is-system-running --wait); echo PID1=$(cat /proc/1/comm); echo PKGS=$(dpkg -l | grep -c "^ii"); echo scratch > /etc/kvmini-was-here; exit 3' \
        > "$dir/out" 2> "$dir/err"
    st=$?
    echo "    (distro-exec: system mode ended with status $st after $((SECONDS - t0)) s)"
    tr -d '\r' < "$dir/out" > "$dir/txt"
    sum_after=$(md5sum < /dev/vda)
    n=$(grep -a '^PKGS=' "$dir/txt" | cut -d= -f2)
    local reason
    reason=$(jq -r .stop_reason "$dir/report.json" 2>/dev/null)
    if [[ $st -ne 3 ]]; then
        fail distro-exec "system mode: kvmini exited $st, expected the command's 3" "$dir"
    elif ! grep -qa '^STATE=running$' "$dir/txt" || ! grep -qa '^PID1=systemd$' "$dir/txt"; then
        fail distro-exec "system mode: expected STATE=running and PID1=systemd, got '$(grep -a '^STATE=\|^PID1=' "$dir/txt" | tr '\n' ' ')'" "$dir"
    elif [[ -z $n ]] || ((n < 50)); then
        fail distro-exec "system mode: dpkg -l lists '${n:-nothing}' packages" "$dir"
    elif [[ $reason != poweroff ]]; then
        fail distro-exec "system mode: stop reason '$reason', expected poweroff (systemd's clean shutdown)" "$dir"
    elif [[ $sum_before != "$sum_after" ]]; then
        fail distro-exec "the image changed under ,snapshot (md5 before $sum_before, after $sum_after)" "$dir"
    else
        # The direct mode on the same root: no systemd, at once.
        t0=$SECONDS
        # shellcheck disable=SC2016
        timeout -k 5 "$distro_timeout" "$vmm" run --kernel "$distro_dir/vmlinuz" --modules "$distro_dir/mods" \
            --disk /dev/vda,snapshot --cpus "$distro_cpus" --memory 1G --cmdline root=/dev/vda --exec-boot direct \
            --exec 'echo PID1=$(cat /proc/1/comm); echo PKGS=$(dpkg -l | grep -c "^ii")' > "$dir/out2" 2> "$dir/err2"
        st=$?
        echo "    (distro-exec: direct mode ended with status $st after $((SECONDS - t0)) s)"
        if [[ $st -ne 0 ]] || ! grep -qa "^PKGS=$n\$" "$dir/out2" || grep -qa '^PID1=systemd' "$dir/out2"; then
            fail distro-exec "direct mode: status $st, output '$(tr '\n' ' ' < "$dir/out2")' (expected PKGS=$n, PID 1 not systemd)" "$dir"
        else
            pass distro-exec
            echo "    (distro-exec: under systemd status 3, $n packages, image unchanged; direct mode too)"
        fi
    fi
}

distro_rootfs_case() {
    local root=/mnt/debian-root sum pkgs
    dir=$work/distro-rootfs
    distro_case=distro-rootfs
    mkdir -p "$dir" "$root"
    # ext4 in L1 (run-nested.sh copies the modules); noload: no journal
    # replay, nothing written.
    if ! l1_insmod crc16 mbcache jbd2 crc32c_generic ext4; then
        fail distro-rootfs "$l1_why"
        return
    fi
    if ! mount -t ext4 -o ro,noload /dev/vda "$root" 2>"$dir/mount.err"; then
        fail distro-rootfs "cannot mount the image read-only in L1: $(head -c 200 "$dir/mount.err")"
        return
    fi
    sum=$(sha256sum < "$root/etc/debian_version" | cut -d' ' -f1)
    local t0=$SECONDS
    # shellcheck disable=SC2016  # expanded by the guest's shell
    timeout -k 5 "$distro_timeout" "$vmm" run --kernel "$distro_dir/vmlinuz" --modules "$distro_dir/mods" \
        --rootfs "$root" --cpus "$distro_cpus" --memory 1G \
        --exec 'bash -c "echo BASH=\$BASH_VERSION"; echo SUM=$(sha256sum /etc/debian_version | cut -d" " -f1); echo PKGS=$(dpkg -l | grep -c "^ii"); exit 5' \
        > "$dir/out" 2> "$dir/err"
    st=$?
    echo "    (distro-rootfs: --exec ended with status $st after $((SECONDS - t0)) s)"
    pkgs=$(grep -a '^PKGS=' "$dir/out" | cut -d= -f2)
    if [[ $st -ne 5 ]]; then
        fail distro-rootfs "--exec on the image's tree: kvmini exited $st, expected the command's 5" "$dir"
    elif ! grep -qa '^BASH=5\.' "$dir/out"; then
        fail distro-rootfs "--exec: Debian's bash did not answer (got '$(grep -a '^BASH=' "$dir/out")')" "$dir"
    elif ! grep -qa "^SUM=$sum\$" "$dir/out"; then
        fail distro-rootfs "--exec: sha256sum of /etc/debian_version differs from L1's $sum" "$dir"
    elif [[ -z $pkgs ]] || ((pkgs < 50)); then
        fail distro-rootfs "--exec: dpkg -l lists '${pkgs:-nothing}' packages" "$dir"
    else
        # No --exec: the tree's own init, systemd, to a root login.
        dir=$work/distro-rootfs/system
        session_timeout=$distro_timeout
        session_start "$dir" "$vmm" run --kernel "$distro_dir/vmlinuz" --modules "$distro_dir/mods" \
            --rootfs "$root" --cpus "$distro_cpus" --memory 1G --report "json:$dir/report.json"
        session_watch distro-rootfs
        if distro_await ' login: ' "the login prompt of the tree's systemd" &&
            { session_send 'root\n'; distro_await 'root@[^ ]*:~# ' "a root shell prompt"; }; then
            # shellcheck disable=SC2016
            session_send 'echo PID1=$(cat /proc/1/comm) ROOT=$(awk '"'"'$2 == "/" { print $3 }'"'"' /proc/mounts | tail -n 1) STATE=$(systemctl is-system-running)\n'
            distro_await '^PID1=' "the answer of the root shell" && {
                session_send 'poweroff\n'
                session_end
                echo "    (distro-rootfs: $(grep -a '^PID1=' "$dir/txt" | tail -n 1))"
                if ! grep -qa '^PID1=systemd ROOT=virtiofs' "$dir/txt"; then
                    fail distro-rootfs "no shell: expected PID 1 systemd on a virtiofs root, got '$(grep -a '^PID1=' "$dir/txt" | tail -n 1)'" "$dir"
                elif [[ $st -ne 0 || $(jq -r .stop_reason "$dir/report.json" 2>/dev/null) != poweroff ]]; then
                    fail distro-rootfs "kvmini exited $st after poweroff (stop reason '$(jq -r .stop_reason "$dir/report.json" 2>/dev/null)'), expected 0 and poweroff" "$dir"
                else
                    pass distro-rootfs
                    echo "    (distro-rootfs: --exec ran Debian's bash, sha256sum and dpkg ($pkgs packages); systemd booted the tree to a root login and powered off)"
                fi
            }
        fi
    fi
    distro_case=
    umount "$root" 2>/dev/null
}

if want distro-boot || want distro-exec || want distro-rootfs; then
    if ! distro_setup; then
        distro_fail_all
    else
        echo "    (distro: kernel $distro_kver from the image)"
        want distro-boot && distro_boot_case
        want distro-exec && distro_exec_case
        want distro-rootfs && distro_rootfs_case
    fi
fi
