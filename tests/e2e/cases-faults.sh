# cases-faults.sh: host-side faults under a running guest, and one boot of
# an ASan+UBSan kvmini; sourced by l1-cases.sh inside the nested L1 (uses
# its helpers pass, fail, want and $vmm, $work, $k, $i, $case_timeout, and
# the guest-session helpers of tools/guest-session.sh).
#
#   fault-enospc    vda's image, sparse, on a 4 MiB tmpfs: guest writes past
#                   that fail with I/O errors, kvmini stays up, vdb works
#   fault-eio       vda is a device-mapper disk: 4 MiB linear over a loop
#                   device, then the dm `error` target (EIO): reads and
#                   writes there fail in the guest, the first part and vdb
#                   work, kvmini stays up
#   fault-kill9     kvmini killed with SIGKILL as soon as the guest printed
#                   that its `sync` returned: the synced record is in the
#                   image. FAULT_KILL_REPS boots (default 20), each also
#                   checking 4 records synced while kvmini runs
#   fault-tap-gone  `ip link del` of the NIC's tap under a running guest: the
#                   NIC stops (ping fails), kvmini does not spin (CPU time
#                   over 5 s), the shell answers and the disk works
#   asan-boot       /usr/bin/kvmini-asan (run-nested.sh: $KVMINI_ASAN) boots
#                   a guest with a disk and a NIC and powers off; any ASan,
#                   LSan or UBSan report fails the case
#
# Cost: one boot of the stock kernel under nested TCG is printed by each case
# ("boot to prompt: N s"). fault-kill9 needs a fresh kvmini per kill, so 20
# kills cost 20 boots; they boot through PVH, which skips the kernel's own
# decompression (a quarter of a boot under TCG) and is otherwise the same
# disk path. tests/e2e/run-nested.sh forwards FAULT_KILL_REPS and SOAK_VMS
# into L1 for shorter or longer runs.

# shellcheck disable=SC1091
source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
# (FAULT_KILL_REPS: l1-cases.sh sources what run-nested.sh forwarded.)
# A boot alone takes 60-100 s under nested TCG on a busy host; these cases
# then do real work: two minutes more than a plain case.
session_timeout=$((case_timeout + 120))
fault_cmdline="console=ttyS0 quiet panic=-1"

# fvm_run NAME VMM-ARGS...: start a session (VMM = $fault_vmm, default $vmm)
# and wait for the prompt; sets $boot_secs.
fvm_run() {
    local name=$1 t0 t1
    shift
    t0=$(cut -d' ' -f1 /proc/uptime)
    session_start "$work/$name" ${fault_env[@]+"${fault_env[@]}"} "${fault_vmm:-$vmm}" run "$@"
    echo "    ($name: ${fault_vmm:-$vmm} run $*)"
    session_prompt
    t1=$(cut -d' ' -f1 /proc/uptime)
    boot_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "    ($name: boot to prompt: ${boot_secs} s)"
}

# The VMM's pid: L1's busybox `timeout` execs the program itself (its
# watchdog is a detached grandchild), so that is $session_pid; a coreutils
# `timeout` has the VMM as its child.
vmm_pid() {
    local f
    if [[ $(cat "/proc/$session_pid/comm" 2>/dev/null) != timeout ]]; then
        echo "$session_pid"
        return
    fi
    for f in /proc/[0-9]*/stat; do
        awk -v pp="$session_pid" '$4 == pp { print $1; found = 1 } END { exit !found }' "$f" 2>/dev/null && return
    done
}

# cpu_ticks PID: user + system time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Guest commands: vdb round trip (256 KiB written, caches dropped, read
# back), printing NAME=ok|bad.
guest_disk_roundtrip() {
    local d=$1 name=$2
    printf '%s\n' \
        "dd if=/dev/urandom of=/tmp/pat.$d bs=64k count=4 2>/dev/null; dd if=/tmp/pat.$d of=/dev/$d bs=64k conv=fsync 2>/dev/null; echo 3 > /proc/sys/vm/drop_caches" \
        "[ \"\$(dd if=/dev/$d bs=64k count=4 2>/dev/null | sha256sum)\" = \"\$(sha256sum < /tmp/pat.$d)\" ] && echo $name=ok || echo $name=bad"
}

# Guest: how many kernel I/O errors for /dev/$1 so far.
guest_ioerrs() { printf 'echo %s=$(dmesg | grep -c "I/O error, dev %s")\n' "$2" "$1"; }

if want fault-enospc; then
    # A sparse 64 MiB image on a 4 MiB tmpfs: the first MiBs fit, then ENOSPC.
    mnt=$work/enospc-fs
    mkdir -p "$mnt"
    if ! mount -t tmpfs -o size=4m tmpfs "$mnt"; then
        fail fault-enospc "cannot mount a 4 MiB tmpfs in L1"
    else
        truncate -s 64M "$mnt/full.img"
        truncate -s 16M "$work/enospc-second.img"
        fvm_run fault-enospc --kernel "$k" --initrd "$i" --cmdline "$fault_cmdline" --memory 256M \
            --disk "$mnt/full.img" --disk "$work/enospc-second.img"
        vm_pid=$(vmm_pid)
        session_send "dd if=/dev/urandom of=/dev/vda bs=1M count=16 conv=fsync 2>/dev/null && echo FULLDD=ok || echo FULLDD=failed\n"
        session_send "$(guest_ioerrs vda IOERRS)\n"
        session_send "$(guest_disk_roundtrip vdb VDB)\n"
        session_send "echo ALIVE=yes\n"
        session_expect '^ALIVE=' || true
        alive=no
        [[ -n $vm_pid ]] && kill -0 "$vm_pid" 2>/dev/null && alive=yes
        used=$(du -k "$mnt/full.img" | cut -f1)
        session_send "poweroff -f\n"
        session_end
        if [[ $st -ne 0 ]]; then
            fail fault-enospc "exit status $st, expected 0 (poweroff after the disk filled)" "$dir"
        elif [[ $alive != yes ]]; then
            fail fault-enospc "kvmini was not running after the disk filled" "$dir"
        elif [[ $(session_value FULLDD) != failed ]]; then
            fail fault-enospc "writing 16 MiB to a disk on a 4 MiB tmpfs did not fail in the guest (FULLDD='$(session_value FULLDD)')" "$dir"
        elif [[ $(session_value IOERRS) -lt 1 ]]; then
            fail fault-enospc "the guest kernel logged no I/O error for vda (IOERRS='$(session_value IOERRS)')" "$dir"
        elif [[ $(session_value VDB) != ok ]]; then
            fail fault-enospc "the second disk did not work (VDB='$(session_value VDB)')" "$dir"
        else
            pass fault-enospc
            echo "    (fault-enospc: guest dd failed, $(session_value IOERRS) I/O errors logged for vda, ${used} KiB of the image allocated on the 4 MiB tmpfs, vdb ok)"
        fi
        umount "$mnt" 2>/dev/null
    fi
fi

if want fault-eio; then
    pf=${PAYLOAD_FILES:-/payload/files}
    eio_dev= loopdev= why=
    grep -qw device-mapper /proc/misc 2>/dev/null || insmod "$pf/dm-mod.ko" 2>/dev/null ||
        why="cannot load dm-mod.ko (run-nested.sh copies it from the kernel package)"
    command -v dmsetup >/dev/null || why="no dmsetup in L1 (run-nested.sh passes the host's with --bin)"
    if [[ -z $why ]]; then
        # 4 MiB of real data over a loop device, then 4 MiB of EIO.
        [[ -e /dev/loop0 ]] || insmod "$pf/loop.ko" 2>/dev/null
        truncate -s 4M "$work/eio-backing.img"
        printf 'KVMINI-GOOD-SECTOR\n' | dd of="$work/eio-backing.img" conv=notrunc 2>/dev/null
        loopdev=$(losetup -f 2>/dev/null)
        if [[ -n $loopdev ]] && losetup "$loopdev" "$work/eio-backing.img" 2>/dev/null; then
            table=$(printf '0 8192 linear %s 0\n8192 8192 error' "$loopdev")
        else
            loopdev=
            table='0 16384 error'
        fi
        dmsetup remove kvfault-eio >/dev/null 2>&1
        if printf '%s\n' "$table" | dmsetup create kvfault-eio --noudevsync 2>"$work/dmsetup.err"; then
            minor=$(dmsetup info -c --noheadings -o minor kvfault-eio 2>/dev/null | tr -d ' ')
            for f in /dev/mapper/kvfault-eio "/dev/dm-$minor"; do
                [[ -b $f ]] && { eio_dev=$f; break; }
            done
            [[ -n $eio_dev ]] || why="dmsetup made no device node (minor '$minor')"
        else
            why="dmsetup create failed: $(tr '\n' ' ' < "$work/dmsetup.err")"
        fi
    fi
    if [[ -n $why ]]; then
        fail fault-eio "$why"
    else
        echo "    (fault-eio: $eio_dev = $(echo "$table" | tr '\n' ';'))"
        truncate -s 16M "$work/eio-second.img"
        fvm_run fault-eio --kernel "$k" --initrd "$i" --cmdline "$fault_cmdline" --memory 256M \
            --disk "$eio_dev" --disk "$work/eio-second.img"
        vm_pid=$(vmm_pid)
        session_send "echo GOOD=\$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -n 1)\n"
        session_send "dd if=/dev/vda of=/dev/null bs=4k skip=1024 count=16 2>/dev/null && echo BADREAD=ok || echo BADREAD=failed\n"
        session_send "dd if=/dev/zero of=/dev/vda bs=4k seek=1024 count=4 conv=fsync 2>/dev/null && echo BADWRITE=ok || echo BADWRITE=failed\n"
        session_send "$(guest_ioerrs vda IOERRS)\n"
        session_send "$(guest_disk_roundtrip vdb VDB)\n"
        session_send "echo ALIVE=yes\n"
        session_expect '^ALIVE=' || true
        alive=no
        [[ -n $vm_pid ]] && kill -0 "$vm_pid" 2>/dev/null && alive=yes
        session_send "poweroff -f\n"
        session_end
        if [[ $st -ne 0 ]]; then
            fail fault-eio "exit status $st, expected 0" "$dir"
        elif [[ $alive != yes ]]; then
            fail fault-eio "kvmini was not running after the I/O errors" "$dir"
        elif [[ $(session_value BADREAD) != failed || $(session_value BADWRITE) != failed ]]; then
            fail fault-eio "I/O on the error region did not fail (read: '$(session_value BADREAD)', write: '$(session_value BADWRITE)')" "$dir"
        elif [[ $(session_value IOERRS) -lt 1 ]]; then
            fail fault-eio "the guest kernel logged no I/O error for vda" "$dir"
        elif [[ -n $loopdev && $(session_value GOOD) != KVMINI-GOOD-SECTOR ]]; then
            fail fault-eio "the readable part of vda read back '$(session_value GOOD)'" "$dir"
        elif [[ $(session_value VDB) != ok ]]; then
            fail fault-eio "the second disk did not work (VDB='$(session_value VDB)')" "$dir"
        else
            pass fault-eio
            echo "    (fault-eio: read and write in the error region failed, $(session_value IOERRS) I/O errors logged, first sector '$(session_value GOOD)', vdb ok)"
        fi
    fi
    dmsetup remove kvfault-eio >/dev/null 2>&1
    [[ -n $loopdev ]] && losetup -d "$loopdev" 2>/dev/null
fi

if want fault-kill9; then
    # Records "REC-<boot>-<n>" at sector 8*boot+n of a raw image; rounds 1-4
    # of a boot are checked while kvmini runs, round 5 right after kill -9.
    reps=${FAULT_KILL_REPS:-20}
    img=$work/kill9.img
    truncate -s 16M "$img"
    kill_ok=0 live_ok=0 kill_why= boots=()
    sector_of() { echo $((8 * $1 + $2)); }
    host_rec() { dd if="$img" bs=512 skip="$1" count=1 2>/dev/null | head -n 1; }
    for ((r = 1; r <= reps; r++)); do
        fvm_run "fault-kill9-$r" --kernel "$k" --initrd "$i" --boot pvh --cmdline "$fault_cmdline" --memory 256M --disk "$img"
        boots+=("$boot_secs")
        for n in 1 2 3 4 5; do
            s=$(sector_of "$r" "$n")
            session_send "printf 'REC-$r-$n\\\\n' | dd of=/dev/vda bs=512 seek=$s conv=sync 2>/dev/null; sync; echo SYNCED=$r-$n\n"
            if ! session_expect "^SYNCED=$r-$n\$"; then
                kill_why="boot $r: the guest never printed SYNCED=$r-$n"
                break
            fi
            if [[ $n -eq 5 ]]; then
                kpid=$(vmm_pid)
                [[ -n $kpid ]] && kill -9 "$kpid"
            fi
            got=$(host_rec "$s")
            if [[ $got != "REC-$r-$n" ]]; then
                kill_why="boot $r round $n$([[ $n -eq 5 ]] && echo ' (after kill -9)'): sector $s holds '$got', expected 'REC-$r-$n'"
                break
            fi
            if [[ $n -eq 5 ]]; then kill_ok=$((kill_ok + 1)); else live_ok=$((live_ok + 1)); fi
        done
        session_end
        [[ -n $kill_why ]] && break
        if [[ $st -ne 137 ]]; then
            kill_why="boot $r: exit status $st, expected 137 (SIGKILL)"
            break
        fi
        # Every record of the earlier boots is still there too.
        for ((p = 1; p <= r; p++)); do
            for n in 1 2 3 4 5; do
                [[ $(host_rec "$(sector_of "$p" "$n")") == "REC-$p-$n" ]] || kill_why="after boot $r: record REC-$p-$n is gone"
            done
        done
        [[ -n $kill_why ]] && break
    done
    echo "    (fault-kill9: $kill_ok of $reps kill -9 checks and $live_ok synced-while-running checks passed; boot to prompt (PVH): ${boots[*]} s)"
    if [[ -n $kill_why ]]; then
        fail fault-kill9 "$kill_why" "$dir"
    else
        pass fault-kill9
    fi
fi

if want fault-tap-gone; then
    tap=kvfault1
    ip link del "$tap" 2>/dev/null
    truncate -s 16M "$work/tapgone-disk.img"
    session_start "$work/fault-tap-gone" "$vmm" run --kernel "$k" --initrd "$i" --cmdline "$fault_cmdline" \
        --memory 256M --disk "$work/tapgone-disk.img" --net "tap=$tap"
    echo "    (fault-tap-gone: $vmm run ... --net tap=$tap)"
    n=0
    until ip link show "$tap" >/dev/null 2>&1 || ((n++ > 300)); do sleep 0.1; done
    ip addr add 198.19.0.1/24 dev "$tap" 2>/dev/null
    ip link set "$tap" up 2>/dev/null
    session_prompt
    vm_pid=$(vmm_pid)
    session_send "ip addr add 198.19.0.2/24 dev eth0; ip link set eth0 up\n"
    session_send "ping -c 1 -W 10 198.19.0.1 >/dev/null && echo PING1=ok || echo PING1=failed\n"
    session_expect '^PING1=' || true
    ip link del "$tap"
    del_st=$?
    session_send "ping -c 2 -W 2 198.19.0.1 >/dev/null && echo PING2=ok || echo PING2=failed\n"
    session_expect '^PING2=' || true
    # The guest idles at its prompt: kvmini should too.
    c0=$(cpu_ticks "$vm_pid")
    sleep 5
    c1=$(cpu_ticks "$vm_pid")
    hz=$(getconf CLK_TCK 2>/dev/null) || hz=100   # L1 has no getconf; Linux's USER_HZ is 100
    [[ $hz =~ ^[1-9][0-9]*$ ]] || hz=100
    cpu_pct=$(( (c1 - c0) * 100 / (hz * 5) ))
    session_send "echo ALIVE=yes\n"
    session_send "$(guest_disk_roundtrip vda DISK)\n"
    session_expect '^DISK=' || true
    session_send "poweroff -f\n"
    session_end
    if [[ $st -ne 0 ]]; then
        fail fault-tap-gone "exit status $st, expected 0" "$dir"
    elif [[ $(session_value PING1) != ok ]]; then
        fail fault-tap-gone "the NIC did not work before the tap went away (PING1='$(session_value PING1)')" "$dir"
    elif [[ $del_st -ne 0 ]]; then
        fail fault-tap-gone "ip link del $tap failed ($del_st)" "$dir"
    elif [[ $(session_value PING2) != failed ]]; then
        fail fault-tap-gone "ping still answered after the tap was deleted (PING2='$(session_value PING2)')" "$dir"
    elif ((cpu_pct > 50)); then
        fail fault-tap-gone "kvmini used ${cpu_pct}% CPU over 5 s with the guest idle after the tap went away (spinning?)" "$dir"
    elif [[ $(session_value ALIVE) != yes || $(session_value DISK) != ok ]]; then
        fail fault-tap-gone "the guest did not answer or its disk failed (ALIVE='$(session_value ALIVE)', DISK='$(session_value DISK)')" "$dir"
    elif ! grep -q "tap '$tap' stopped: " "$dir/err"; then
        fail fault-tap-gone "kvmini did not say that the tap stopped (expected \"tap '$tap' stopped: ...\" on stderr)" "$dir"
    else
        pass fault-tap-gone
        echo "    (fault-tap-gone: ping ok, tap deleted, ping failed, kvmini at ${cpu_pct}% CPU while idle, shell and disk ok; kvmini said: $(grep -m1 -o "tap '$tap' stopped: .*" "$dir/err"))"
    fi
    ip link del "$tap" 2>/dev/null
fi

if want asan-boot; then
    asan=/usr/bin/kvmini-asan
    if [[ ! -x $asan ]]; then
        fail asan-boot "no $asan in L1: build the ASan+UBSan kvmini (tools/test makes build-asan/kvmini; or KVMINI_ASAN=PATH for run-nested.sh)"
    else
        tap=kvfault2
        ip link del "$tap" 2>/dev/null
        truncate -s 16M "$work/asan-disk.img"
        fault_vmm=$asan
        fault_env=(env "ASAN_OPTIONS=detect_leaks=1:exitcode=99:halt_on_error=1"
                   "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=98"
                   "LSAN_OPTIONS=exitcode=97")
        fvm_run asan-boot --kernel "$k" --initrd "$i" --cmdline "$fault_cmdline" --memory 256M --cpus 2 \
            --disk "$work/asan-disk.img" --net "tap=$tap"
        unset fault_vmm fault_env
        ip addr add 198.19.1.1/24 dev "$tap" 2>/dev/null
        ip link set "$tap" up 2>/dev/null
        session_send "ip addr add 198.19.1.2/24 dev eth0; ip link set eth0 up\n"
        session_send "ping -c 1 -W 10 198.19.1.1 >/dev/null && echo PING=ok || echo PING=failed\n"
        session_send "$(guest_disk_roundtrip vda DISK)\n"
        session_expect '^DISK=' || true
        session_send "poweroff -f\n"
        session_end
        reports=$(grep -cE 'Sanitizer|runtime error:' "$dir/err")
        if [[ $reports -gt 0 ]]; then
            fail asan-boot "the sanitizers reported ($reports lines; exit status $st): $(grep -m3 -E 'Sanitizer|runtime error:' "$dir/err" | tr '\n' '|')" "$dir"
        elif [[ $st -ne 0 ]]; then
            fail asan-boot "exit status $st, expected 0 (99/98/97: ASan/UBSan/LSan)" "$dir"
        elif [[ $(session_value PING) != ok || $(session_value DISK) != ok ]]; then
            fail asan-boot "the devices did not work under the ASan build (PING='$(session_value PING)', DISK='$(session_value DISK)')" "$dir"
        elif ip link show "$tap" >/dev/null 2>&1; then
            fail asan-boot "the tap kvmini created is still there" "$dir"
        else
            pass asan-boot
            echo "    (asan-boot: ASan+UBSan kvmini, 2 vCPUs, disk and NIC used, poweroff status 0, no sanitizer report; boot to prompt ${boot_secs} s)"
        fi
    fi
fi
