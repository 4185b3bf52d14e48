# cases-reliability.sh: cases for what once killed kvmini from inside a
# guest, sourced by l1-cases.sh in the nested L1 (helpers pass, fail, want;
# $vmm, $work, $k, $i, $case_timeout). They run the plain build with the
# seccomp filters on, as users run it.
# shellcheck shell=bash disable=SC2154

# reset-storm (issue 9 item 1): a 12-vCPU guest resets its disk from every
# CPU in turn (unbinding the virtio-blk driver resets the device, binding
# it sets the queues up again: the register writes run on that CPU's vCPU
# thread) while direct reads run on the last CPU. kvmini must survive
# (a vCPU thread that allocated for the first time under its filter used
# to kill it: 'thread vcpu made forbidden system call'), the disk must
# read back the same afterwards, and the VM must end with status 0.
if want reset-storm; then
    dir=$work/reset-storm
    mkdir -p "$dir"
    # L1 is busybox: its head takes no size suffix
    dd if=/dev/urandom of="$dir/disk.img" bs=1M count=8 2>/dev/null
    want_sum=$(dd if="$dir/disk.img" bs=1M count=4 2>/dev/null | sha256sum | cut -d' ' -f1)
    # shellcheck disable=SC2016  # expanded by the guest's shell
    storm='n=$(nproc); drv=/sys/bus/virtio/drivers/virtio_blk
dev=$(basename "$(readlink /sys/block/vda/device)")
(while :; do taskset -c $((n - 1)) dd if=/dev/vda of=/dev/null bs=64k count=64 iflag=direct 2>/dev/null; done) &
bg=$!
resets=0
for c in $(seq 0 $((n - 2))); do
    taskset -c $c sh -c "echo $dev > $drv/unbind; echo $dev > $drv/bind" && resets=$((resets + 1))
    t=0; while [ ! -b /dev/vda ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
done
kill $bg; wait $bg 2>/dev/null
echo "CPUS=$n RESETS=$resets SUM=$(dd if=/dev/vda bs=1M count=4 iflag=direct 2>/dev/null | sha256sum | cut -d" " -f1)"'
    st=0 stuck=
    "$vmm" run --kernel "$k" --initrd "$i" --cpus 12 --memory 512M \
        --cmdline "quiet" --disk "$dir/disk.img" --exec "$storm" \
        < /dev/null > "$dir/out" 2> "$dir/err" &
    storm_pid=$!
    # Bounded by wall-clock time; then SIGKILL, and a process that even
    # SIGKILL does not end within 30 s is reported (with where its threads
    # wait) instead of waited for.
    storm_end=$((SECONDS + case_timeout * 3))
    while kill -0 "$storm_pid" 2>/dev/null && ((SECONDS < storm_end)); do sleep 1; done
    if kill -0 "$storm_pid" 2>/dev/null; then
        echo "    (reset-storm: still running after $((case_timeout * 3)) s: SIGKILL)"
        kill -9 "$storm_pid" 2>/dev/null
        storm_end=$((SECONDS + 30))
        while [[ $(awk '{ print $3 }' "/proc/$storm_pid/stat" 2>/dev/null) == [RSD] ]] && ((SECONDS < storm_end)); do sleep 1; done
        if [[ $(awk '{ print $3 }' "/proc/$storm_pid/stat" 2>/dev/null) == [RSD] ]]; then
            stuck=$(for t in /proc/"$storm_pid"/task/*; do echo "tid ${t##*/} state $(awk '{ print $3 }' "$t/stat") wchan $(cat "$t/wchan")"; done 2>/dev/null | sort | uniq -c -f 2 | tr -s ' \n' ' ')
        fi
    fi
    if [[ -z $stuck ]]; then
        wait "$storm_pid" || st=$?
    fi
    line=$(grep -o 'CPUS=[0-9]* RESETS=[0-9]* SUM=[0-9a-f]*' "$dir/out" | tail -n 1)
    echo "    (reset-storm: status $st; guest said: ${line:-nothing})"
    if [[ -n $stuck ]]; then
        fail reset-storm "kvmini did not end 30 s after SIGKILL (its threads: $stuck)" "$dir"
    elif grep -q 'seccomp: thread' "$dir/err"; then
        fail reset-storm "kvmini killed itself through its filter: $(grep -m1 'seccomp: thread' "$dir/err")" "$dir"
    elif [[ $st -ne 0 ]]; then
        fail reset-storm "status $st, expected 0" "$dir"
    elif [[ $line != "CPUS=12 RESETS=11 SUM=$want_sum" ]]; then
        fail reset-storm "guest said '${line:-nothing}', expected 'CPUS=12 RESETS=11 SUM=$want_sum'" "$dir"
    else
        pass reset-storm
    fi
fi
