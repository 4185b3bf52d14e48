# cases-exec.sh: the --exec / --timeout / --report cases, sourced at the
# end of tests/e2e/l1-cases.sh (in the nested L1). Uses its helpers pass,
# fail, want and its variables $vmm, $work, $k, $i, $case_timeout. No
# python3 or jq in L1: the report is checked against its exact shape with
# a full-match regular expression, then its numbers compared with awk.
# shellcheck shell=bash disable=SC2154

# exec_run NAME -- VMM_RUN_ARGS...: runs `vmm run ARGS` with stdin from
# /dev/null (as in CI: no terminal), bounded by the case timeout. Sets
# $dir (out, err), $st and $elapsed (seconds).
exec_run() {
    local name=$1 t0 t1
    shift 2
    dir=$work/$name
    mkdir -p "$dir"
    t0=$(cut -d' ' -f1 /proc/uptime)
    st=0
    timeout -k 5 "$case_timeout" "$vmm" run "$@" < /dev/null > "$dir/out" 2> "$dir/err" || st=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "    ($name: status $st in ${elapsed}s)"
}

exec_args=(--kernel "$k" --initrd "$i" --cpus 1 --memory 256M --cmdline "quiet")

if want exec-status; then
    bad=
    for want_st in 0 1 42 255; do
        exec_run "exec-status-$want_st" -- "${exec_args[@]}" --quiet --exec "exit $want_st"
        [[ $st -eq $want_st ]] || { bad="exit $want_st gave status $st"; break; }
    done
    if [[ -n $bad ]]; then fail exec-status "$bad" "$dir"; else pass exec-status; fi
fi

if want exec-pvh; then
    # The PVH path hands the initrd (and the appended archive) over in
    # the start info's module list rather than the zero page. The ELF
    # vmlinux unpacked on the host, as pvh-elf uses: --boot pvh on the
    # bzImage would unpack it in L1 under TCG first.
    pvh_args=("${exec_args[@]}")
    pvh_args[1]=$vmlinux
    exec_run exec-pvh -- "${pvh_args[@]}" --quiet --exec 'echo pvh; exit 7'
    if [[ -z $vmlinux ]]; then
        fail exec-pvh "no unpacked ELF vmlinux in ${PAYLOAD_FILES:-/payload/files}"
    elif [[ $st -ne 7 ]]; then
        fail exec-pvh "status $st, expected 7" "$dir"
    elif [[ $(cat "$dir/out") != pvh ]]; then
        fail exec-pvh "stdout '$(head -c 100 "$dir/out")', expected 'pvh'" "$dir"
    else
        pass exec-pvh
    fi
fi

if want exec-bytes; then
    # Double and single quotes, a newline between two commands, UTF-8
    # (e acute, a check mark), and a line on stderr.
    cmd=$'echo "double \\"quoted\\" and \'single\'"\necho \'h\xc3\xa9llo \xe2\x9c\x93\'\necho to-stderr >&2'
    printf '%s\n' "double \"quoted\" and 'single'" $'h\xc3\xa9llo \xe2\x9c\x93' > "$work/exec-bytes.want"
    exec_run exec-bytes -- "${exec_args[@]}" --quiet --exec "$cmd"
    if [[ $st -ne 0 ]]; then
        fail exec-bytes "status $st, expected 0" "$dir"
    elif ! cmp -s "$dir/out" "$work/exec-bytes.want"; then
        fail exec-bytes "stdout differs: got $(od -c "$dir/out" | head -n 8 | tr '\n' '|')" "$dir"
    elif ! grep -qx to-stderr "$dir/err"; then
        fail exec-bytes "'to-stderr' did not arrive on stderr as its own line" "$dir"
    else
        pass exec-bytes
    fi
fi

if want exec-panic; then
    exec_run exec-panic -- "${exec_args[@]}" --exec 'echo c > /proc/sysrq-trigger; sleep 30'
    if [[ $st -ne 121 ]]; then
        fail exec-panic "status $st, expected 121 (guest kernel panicked)" "$dir"
    elif ! grep -q 'Kernel panic' "$dir/err"; then
        fail exec-panic "no 'Kernel panic' in the console on stderr" "$dir"
    else
        pass exec-panic
    fi
fi

if want exec-timeout; then
    exec_run exec-timeout -- "${exec_args[@]}" --quiet --timeout 5s --exec 'sleep 100'
    if [[ $st -ne 124 ]]; then
        fail exec-timeout "status $st, expected 124 (timeout)" "$dir"
    elif awk -v e="$elapsed" 'BEGIN { exit !(e < 5 || e > 10) }'; then
        fail exec-timeout "took ${elapsed}s, expected 5s plus at most 5s of margin" "$dir"
    else
        pass exec-timeout
    fi
fi

if want exec-report; then
    exec_run exec-report -- "${exec_args[@]}" --quiet --report "json:$work/exec-report.json" \
        --exec 'echo hi'
    # Parsed with jq: the fields and their types, then the milestones'
    # order (every one present, each no earlier than the one before).
    shape='.exit_status == 0 and .stop_reason == "poweroff" and .command_status == 0
        and (.peak_rss_kib | type == "number" and . > 0)
        and (.milestones | keys_unsorted) == ["process_start", "first_vcpu_entry",
            "first_serial_byte", "userspace_up", "command_started", "command_done", "vm_exit"]'
    order='[.milestones[]] as $m | ($m | all(type == "number")) and $m == ($m | sort)'
    # The boot profile (issue 11): KVM's exits by reason (the classes and
    # "other" add up to the total, which is KVM's own "exits"), guest RAM
    # mapped with 2 MiB pages (L1 has transparent huge pages), the time to
    # the first guest instruction, and kvmini's memory apart from guest RAM.
    profile='(.kvm_exits | type == "object" and .total > 0
            and ([.[]] | add) == 2 * .total
            and (keys_unsorted == ["total", "io", "mmio", "halt", "nested_page_fault",
                 "host_interrupt", "irq_window", "nmi_window", "signal", "request_irq", "other"]))
        and .kvm_stats.exits == .kvm_exits.total and .kvm_stats.io_exits == .kvm_exits.io
        and .kvm_stats.pages_2m > 0
        and .before_main_s >= 0
        and .to_first_guest_instruction_s >= .milestones.first_vcpu_entry
        and .to_first_guest_instruction_s < .milestones.userspace_up
        and .rss_kib > 0 and .guest_resident_kib > 0 and .guest_hugetlb_kib == 0
        and .vmm_overhead_kib == .rss_kib - .guest_resident_kib
        and .guest_resident_kib <= 256 * 1024'
    json=$(cat "$work/exec-report.json" 2>/dev/null)
    if [[ $st -ne 0 ]]; then
        fail exec-report "status $st, expected 0" "$dir"
    elif [[ $(wc -l < "$work/exec-report.json") -ne 1 ]] || ! jq -e "$shape" "$work/exec-report.json" > /dev/null; then
        fail exec-report "report is not one JSON object of the documented shape (jq): $json" "$dir"
    elif ! jq -e "$order" "$work/exec-report.json" > /dev/null; then
        fail exec-report "milestones out of order: $json" "$dir"
    elif ! jq -e "$profile" "$work/exec-report.json" > /dev/null; then
        fail exec-report "boot profile (kvm_exits, kvm_stats, memory, first instruction) wrong: $json" "$dir"
    else
        pass exec-report
        echo "    ($json)"
    fi
fi

if want exec-hugetlb; then
    # --memory SIZE,hugetlb (issue 11): with the huge pages reserved the
    # guest runs from them (KVM maps it with 2 MiB pages, none of it in
    # kvmini's RSS); with none reserved kvmini refuses to start, saying how
    # to reserve them, rather than dying of SIGBUS later.
    nr=/proc/sys/vm/nr_hugepages
    old_nr=$(cat "$nr")
    echo 140 > "$nr"
    got_nr=$(cat "$nr")
    hp_args=("${exec_args[@]}")
    for ((a = 0; a < ${#hp_args[@]}; a++)); do
        [[ ${hp_args[a]} == --memory ]] && hp_args[a + 1]=256M,hugetlb
    done
    exec_run exec-hugetlb -- "${hp_args[@]}" --quiet --report "json:$work/exec-hugetlb.json" --exec 'echo huge'
    st_ok=$st out_ok=$(cat "$dir/out")
    json=$(cat "$work/exec-hugetlb.json" 2>/dev/null)
    echo 0 > "$nr"
    exec_run exec-hugetlb-none -- "${hp_args[@]}" --quiet --exec true
    echo "$old_nr" > "$nr"
    if [[ $(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo) != 2048 ]]; then
        fail exec-hugetlb "this L1's default huge page size is not 2 MiB"
    elif [[ $got_nr -lt 128 ]]; then
        fail exec-hugetlb "L1 could reserve only $got_nr of 140 huge pages (fragmented memory?)"
    elif [[ $st_ok -ne 0 || $out_ok != huge ]]; then
        fail exec-hugetlb "with 140 huge pages reserved: status $st_ok, stdout '$out_ok'" "$work/exec-hugetlb"
    elif ! jq -e '.guest_hugetlb_kib > 0 and .guest_resident_kib == 0 and .kvm_stats.pages_2m > 0' \
            "$work/exec-hugetlb.json" > /dev/null; then
        fail exec-hugetlb "report: guest RAM not in huge pages: $json" "$work/exec-hugetlb"
    elif [[ $st -ne 125 ]] || ! grep -q 'needs 128 free 2 MiB huge pages.*nr_hugepages' "$dir/err"; then
        fail exec-hugetlb "with no huge pages: status $st (want 125), stderr '$(head -c 300 "$dir/err")'" "$dir"
    else
        pass exec-hugetlb
    fi
fi

if want exec-snapshot; then
    # The CI recipe's shape: the command writes to an ext4 image attached
    # as a snapshot; it reads its own write back, the image stays as it was.
    if ! command -v mke2fs >/dev/null; then
        fail exec-snapshot "mke2fs is missing in L1 (run-nested.sh passes it with --bin)"
    else
        mkdir -p "$work/exec-snap-src"
        printf 'from-host\n' > "$work/exec-snap-src/f"
        rm -f "$work/exec-snap.img"
        truncate -s 64M "$work/exec-snap.img"
        mke2fs -q -t ext4 -d "$work/exec-snap-src" "$work/exec-snap.img"
        before=$(sha256sum "$work/exec-snap.img" | cut -d' ' -f1)
        exec_run exec-snapshot -- "${exec_args[@]}" --quiet --disk "$work/exec-snap.img,snapshot" \
            --exec 'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/f &&
echo from-guest > /mnt/f && sync && cat /mnt/f && umount /mnt'
        after=$(sha256sum "$work/exec-snap.img" | cut -d' ' -f1)
        if [[ $st -ne 0 ]]; then
            fail exec-snapshot "status $st, expected 0" "$dir"
        elif [[ $(cat "$dir/out") != $'from-host\nfrom-guest' ]]; then
            fail exec-snapshot "stdout '$(head -c 200 "$dir/out" | tr '\n' '|')', expected 'from-host|from-guest|'" "$dir"
        elif [[ $after != "$before" ]]; then
            fail exec-snapshot "the image changed: sha256 $before -> $after" "$dir"
        else
            pass exec-snapshot
        fi
    fi
fi

if want platform-clock-pat; then
    # What a distribution's boot expects of the PC (issue: Debian under
    # systemd): the CMOS clock found through ACPI (PNP0B00) and setting the
    # guest's time from the host's, PAT initialised (kvmini enables the
    # MTRRs), and --cpu default hiding 5-level paging and VMX/SVM.
    # shellcheck disable=SC2016  # expanded by the guest's shell
    script='dmesg | grep -q "rtc_cmos 00:.*setting system clock" && echo RTC-SET
[ -e /sys/class/rtc/rtc0 ] && echo RTC0
dmesg | grep -q "x86/PAT: Configuration" && echo PAT-ON
grep -qw la57 /proc/cpuinfo && echo LA57
grep -qwE "vmx|svm" /proc/cpuinfo && echo VIRT
echo "NOW=$(date +%s)"'
    t_host=$(date +%s)
    exec_run platform-clock-pat -- "${exec_args[@]}" --quiet --exec "$script"
    got=$(grep -v NOW= "$dir/out" | tr '\n' ' ')
    now=$(grep -o 'NOW=[0-9]*' "$dir/out" | cut -d= -f2)
    skew=$(( ${now:-0} - t_host ))
    if [[ $st -ne 0 ]]; then
        fail platform-clock-pat "status $st" "$dir"
    elif [[ $got != "RTC-SET RTC0 PAT-ON " ]]; then
        fail platform-clock-pat "the guest said '$got', expected 'RTC-SET RTC0 PAT-ON '" "$dir"
    elif [[ -z $now ]] || (( skew < -2 || skew > 30 )); then
        fail platform-clock-pat "the guest's clock is ${now:-unknown}, L1's was $t_host at start (skew ${skew}s)" "$dir"
    else
        pass platform-clock-pat
        echo "    (platform-clock-pat: rtc_cmos set the clock (guest - L1 at start: ${skew}s, boot included), PAT on, no la57/vmx/svm)"
    fi
fi
