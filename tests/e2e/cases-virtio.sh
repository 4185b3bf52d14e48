# cases-virtio.sh: the virtio e2e cases (disks, network, hvc0), sourced by
# l1-cases.sh inside the nested L1; uses its helpers (pass, fail, want) and
# variables ($vmm, $work, $k, $i, $case_timeout).
#
# Here the test talks with the guest shell step by step (vm_run, vm_prompt,
# vm_expect, vm_send, vm_end: tools/guest-session.sh).

# The step-by-step guest session helpers (tools/guest-session.sh, copied
# into L1 by run-nested.sh).
# shellcheck disable=SC1091
source "${PAYLOAD_FILES:-/payload/files}/guest-session.sh"
session_timeout=$case_timeout

# vm_run NAME KVMINI-RUN-ARGS...
vm_run() {
    local name=$1
    shift
    session_start "$work/$name" "$vmm" run "$@"
    echo "    ($name: $vmm run $*)"
}
vm_prompt() { session_prompt; }
vm_expect() { session_expect "$1"; }
vm_send() { session_send "$1"; }
vm_end() { session_end; }
value() { session_value "$1"; }

have_e2fs=1
for tool in mke2fs debugfs; do
    command -v "$tool" >/dev/null || have_e2fs=0
done

# mkimage IMG: a 32 MiB ext4 image made with mke2fs -d from known files
# (SHA256SUMS lists them).
mkimage() {
    local src=$work/imgsrc
    if [[ ! -d $src ]]; then
        mkdir -p "$src/sub"
        dd if=/dev/urandom of="$src/random.bin" bs=1024 count=700 2>/dev/null
        printf 'hello from the host\n' > "$src/hello.txt"
        seq 1 20000 > "$src/sub/numbers.txt"
        (cd "$src" && sha256sum random.bin hello.txt sub/numbers.txt > SHA256SUMS)
    fi
    mke2fs -q -F -t ext4 -d "$src" "$1" 32M
}

# host_sum IMG PATH: sha256 of PATH inside the ext4 image, read with debugfs.
host_sum() {
    rm -f "$dir/extracted"
    debugfs -R "dump $2 $dir/extracted" "$1" >/dev/null 2>&1
    [[ -f $dir/extracted ]] && sha256sum "$dir/extracted" | cut -d' ' -f1
}

# The guest's side of a disk check: mount /dev/$1 at /mnt/$1, verify the
# host's files, write new.bin, print its sum, sync, unmount.
guest_disk_rw() {
    local d=$1
    printf '%s\n' \
        "mkdir -p /mnt/$d && mount -t ext4 /dev/$d /mnt/$d && echo MOUNT_$d=ok" \
        "(cd /mnt/$d && sha256sum -c SHA256SUMS >/dev/null) && echo CHECK_$d=ok || echo CHECK_$d=bad" \
        "dd if=/dev/urandom of=/mnt/$d/new.bin bs=4096 count=300 2>/dev/null; sync" \
        "echo 3 > /proc/sys/vm/drop_caches; echo NEWSUM_$d=\$(sha256sum /mnt/$d/new.bin | cut -d' ' -f1)" \
        "umount /mnt/$d && echo UMOUNT_$d=ok"
}

if want disk-rw || want disk-snapshot-mmio || want disk-ro-two; then
    if [[ $have_e2fs -eq 0 ]]; then
        fail disk-cases "mke2fs/debugfs are missing in L1 (run-nested.sh passes them with --bin): the disk cases cannot run"
    fi
fi

if want disk-rw && [[ $have_e2fs -eq 1 ]]; then
    # A guest writes to an ext4 image over virtio-blk (PCI); the host reads it back.
    mkimage "$work/rw.img"
    vm_run disk-rw --kernel "$k" --initrd "$i" --cmdline "console=ttyS0 quiet panic=-1" \
        --memory 512M --disk "$work/rw.img"
    vm_prompt
    vm_send "$(guest_disk_rw vda)\n"
    vm_send "echo PCIDEVS=\$(ls /sys/bus/pci/drivers/virtio-pci | grep -c '^0000:')\npoweroff -f\n"
    vm_end
    sum=$(value NEWSUM_vda)
    hsum=$(host_sum "$work/rw.img" /new.bin)
    if [[ $st -ne 0 ]]; then
        fail disk-rw "exit status $st, expected 0" "$dir"
    elif [[ $(value CHECK_vda) != ok ]]; then
        fail disk-rw "the guest did not find the host's files intact (CHECK_vda='$(value CHECK_vda)', MOUNT_vda='$(value MOUNT_vda)')" "$dir"
    elif [[ $(value UMOUNT_vda) != ok ]]; then
        fail disk-rw "the guest could not unmount" "$dir"
    elif [[ -z $sum || $sum != "$hsum" ]]; then
        fail disk-rw "new.bin: guest sum '$sum', host (debugfs) sum '$hsum'" "$dir"
    elif [[ $(value PCIDEVS) -lt 1 ]]; then
        fail disk-rw "no device bound to the guest's virtio-pci driver (PCIDEVS='$(value PCIDEVS)')" "$dir"
    else
        pass disk-rw
    fi
fi

if want disk-snapshot-mmio && [[ $have_e2fs -eq 1 ]]; then
    # snapshot over virtio-mmio: the guest sees its writes, the image does not change.
    mkimage "$work/snap.img"
    touch -d '2020-01-02 03:04:05' "$work/snap.img"
    before=$(sha256sum "$work/snap.img" | cut -d' ' -f1)
    mtime_before=$(stat -c %Y "$work/snap.img")
    vm_run disk-snapshot-mmio --kernel "$k" --initrd "$i" --cmdline "console=ttyS0 quiet panic=-1" \
        --memory 512M --disk "$work/snap.img,snapshot,transport=mmio"
    vm_prompt
    vm_send "$(guest_disk_rw vda)\n"
    # Mount again: the guest reads its own write back from the overlay.
    vm_send "mount -t ext4 /dev/vda /mnt/vda && echo AGAIN=\$(sha256sum /mnt/vda/new.bin | cut -d' ' -f1); umount /mnt/vda\n"
    vm_send "echo MMIODEVS=\$(ls /sys/bus/platform/drivers/virtio-mmio | grep -c LNRO0005)\n"
    vm_send "poweroff -f\n"
    vm_end
    after=$(sha256sum "$work/snap.img" | cut -d' ' -f1)
    if [[ $st -ne 0 ]]; then
        fail disk-snapshot-mmio "exit status $st, expected 0" "$dir"
    elif [[ $(value CHECK_vda) != ok ]]; then
        fail disk-snapshot-mmio "the guest did not find the host's files intact (CHECK_vda='$(value CHECK_vda)')" "$dir"
    elif [[ -z $(value NEWSUM_vda) || $(value AGAIN) != "$(value NEWSUM_vda)" ]]; then
        fail disk-snapshot-mmio "the guest did not read back its write after remounting ('$(value NEWSUM_vda)' vs '$(value AGAIN)')" "$dir"
    elif [[ $after != "$before" ]]; then
        fail disk-snapshot-mmio "the image changed: sha256 $before -> $after" "$dir"
    elif [[ $(stat -c %Y "$work/snap.img") != "$mtime_before" ]]; then
        fail disk-snapshot-mmio "the image's mtime changed" "$dir"
    elif [[ $(value MMIODEVS) -lt 1 ]]; then
        fail disk-snapshot-mmio "no device bound to the guest's virtio-mmio driver (MMIODEVS='$(value MMIODEVS)')" "$dir"
    else
        pass disk-snapshot-mmio
    fi
fi

if want disk-ro-two && [[ $have_e2fs -eq 1 ]]; then
    # Two disks: vda read-only (writes fail in the guest), vdb writable.
    mkimage "$work/ro.img"
    mkimage "$work/second.img"
    ro_before=$(sha256sum "$work/ro.img" | cut -d' ' -f1)
    vm_run disk-ro-two --kernel "$k" --initrd "$i" --cmdline "console=ttyS0 quiet panic=-1" \
        --memory 512M --disk "$work/ro.img,ro" --disk "$work/second.img"
    vm_prompt
    vm_send "echo ROFLAG=\$(cat /sys/block/vda/ro)\n"
    vm_send "dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2>/dev/null && echo RAWWRITE=accepted || echo RAWWRITE=refused\n"
    vm_send "mkdir -p /mnt/vda && mount -t ext4 -o ro /dev/vda /mnt/vda && (cd /mnt/vda && sha256sum -c SHA256SUMS >/dev/null) && echo ROCHECK=ok\n"
    vm_send "touch /mnt/vda/x 2>/dev/null && echo ROTOUCH=accepted || echo ROTOUCH=refused\n"
    vm_send "$(guest_disk_rw vdb)\npoweroff -f\n"
    vm_end
    hsum=$(host_sum "$work/second.img" /new.bin)
    if [[ $st -ne 0 ]]; then
        fail disk-ro-two "exit status $st, expected 0" "$dir"
    elif [[ $(value ROFLAG) != 1 ]]; then
        fail disk-ro-two "/sys/block/vda/ro is '$(value ROFLAG)', expected 1" "$dir"
    elif [[ $(value RAWWRITE) != refused || $(value ROTOUCH) != refused ]]; then
        fail disk-ro-two "a write to the ro disk was accepted (raw: $(value RAWWRITE), file: $(value ROTOUCH))" "$dir"
    elif [[ $(value ROCHECK) != ok ]]; then
        fail disk-ro-two "the ro disk's files did not check out" "$dir"
    elif [[ $(sha256sum "$work/ro.img" | cut -d' ' -f1) != "$ro_before" ]]; then
        fail disk-ro-two "the ro image changed" "$dir"
    elif [[ $(value CHECK_vdb) != ok || -z $(value NEWSUM_vdb) || $(value NEWSUM_vdb) != "$hsum" ]]; then
        fail disk-ro-two "second disk: check '$(value CHECK_vdb)', guest sum '$(value NEWSUM_vdb)', host sum '$hsum'" "$dir"
    else
        pass disk-ro-two
    fi
fi

if want net-tap; then
    # A tap link (addresses from 198.18.0.0/15, RFC 2544): 4 MiB each way
    # over HTTP with busybox httpd and wget, checksums compared. (No wget
    # -T: busybox 1.35's wget crashes with it.)
    tap=kvtap0
    www=$work/www
    mkdir -p "$www"
    dd if=/dev/urandom of="$www/h2g" bs=1M count=4 2>/dev/null
    h2g_sum=$(sha256sum "$www/h2g" | cut -d' ' -f1)
    ip link del "$tap" 2>/dev/null
    vm_run net-tap --kernel "$k" --initrd "$i" --cmdline "console=ttyS0 quiet panic=-1" \
        --memory 512M --net "tap=$tap,mac=52:54:00:12:34:56"
    # kvmini creates the tap (it is root in L1); give the host side an address.
    n=0
    until ip link show "$tap" >/dev/null 2>&1 || ((n++ > 300)); do sleep 0.1; done
    ip addr add 198.18.0.1/24 dev "$tap" 2>/dev/null
    ip link set "$tap" up 2>/dev/null
    httpd -f -p 198.18.0.1:8080 -h "$www" &
    httpd_pid=$!
    vm_prompt
    vm_send "echo MAC=\$(cat /sys/class/net/eth0/address)\n"
    vm_send "ip addr add 198.18.0.2/24 dev eth0; ip link set eth0 up; ip link set lo up\n"
    vm_send "mkdir -p /www; dd if=/dev/urandom of=/www/g2h bs=1M count=4 2>/dev/null; echo G2HSUM=\$(sha256sum /www/g2h | cut -d' ' -f1)\n"
    vm_send "httpd -p 8080 -h /www && echo HTTPD=up\n"
    vm_send "echo H2GSUM=\$(wget -q -O - http://198.18.0.1:8080/h2g | sha256sum | cut -d' ' -f1)\n"
    got_g2h=
    if vm_expect '^HTTPD=up' && vm_expect '^H2GSUM='; then
        got_g2h=$(wget -q -O - http://198.18.0.2:8080/g2h | sha256sum | cut -d' ' -f1)
    fi
    # With a tap, the event loop's thread (and only it) runs SCHED_BATCH.
    # shellcheck disable=SC2046  # one word per pid
    batch=$(batch_threads $(procs_named kvmini))
    vm_send "poweroff -f\n"
    vm_end
    kill "$httpd_pid" 2>/dev/null
    if [[ $st -ne 0 ]]; then
        fail net-tap "exit status $st, expected 0" "$dir"
    elif [[ $(value MAC) != 52:54:00:12:34:56 ]]; then
        fail net-tap "guest MAC '$(value MAC)', expected 52:54:00:12:34:56" "$dir"
    elif [[ $(value H2GSUM) != "$h2g_sum" ]]; then
        fail net-tap "host->guest 4 MiB: guest got sum '$(value H2GSUM)', expected '$h2g_sum'" "$dir"
    elif [[ -z $got_g2h || $got_g2h != "$(value G2HSUM)" ]]; then
        fail net-tap "guest->host 4 MiB: host got sum '$got_g2h', guest has '$(value G2HSUM)'" "$dir"
    elif ip link show "$tap" >/dev/null 2>&1; then
        fail net-tap "the tap kvmini created is still there after it exited" "$dir"
    elif [[ $batch != 1 ]]; then
        fail net-tap "$batch of kvmini's threads ran SCHED_BATCH, expected 1 (the event loop)" "$dir"
    else
        pass net-tap
    fi
fi

if want hvc0-shell; then
    # --console virtio: the shell runs on hvc0 and answers.
    vm_run hvc0-shell --kernel "$k" --initrd "$i" --cmdline "quiet panic=-1" \
        --memory 512M --cpus 1 --console virtio
    vm_prompt
    # shellcheck disable=SC2016  # expanded by the guest's shell
    vm_send 'echo TTY=$(readlink /proc/self/fd/0)\necho UNAME=$(uname -r)\npoweroff -f\n'
    vm_end
    if [[ $st -ne 0 ]]; then
        fail hvc0-shell "exit status $st, expected 0" "$dir"
    elif [[ $(value TTY) != /dev/hvc0 ]]; then
        fail hvc0-shell "the shell's terminal is '$(value TTY)', expected /dev/hvc0" "$dir"
    elif [[ $(value UNAME) != "$kver" ]]; then
        fail hvc0-shell "uname -r gave '$(value UNAME)', expected '$kver'" "$dir"
    else
        pass hvc0-shell
    fi
fi
