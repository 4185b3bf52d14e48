# cases-soak.sh: the soak case, sourced by l1-cases.sh inside the nested
# L1 (helpers pass, fail, want; $vmm, $work, $k, $i). Runs tools/soak.sh
# (copied into L1 by run-nested.sh) with SOAK_VMS back-to-back VMs (default
# 10): every VM exits 0 and kvmini's fds, peak RSS, temp files and tap
# devices do not grow. Its SOAK-RESULT line (with the VMs/min rate) is
# printed in the log.
if want soak; then
    soak=${PAYLOAD_FILES:-/payload/files}/soak.sh
    if [[ ! -f $soak ]]; then
        fail soak "no soak.sh in L1 (run-nested.sh copies tools/soak.sh)"
    else
        mkdir -p "$work/soak"
        soak_st=0
        TMPDIR=$work/soak bash "$soak" --vms "${SOAK_VMS:-10}" --kvmini "$vmm" --kernel "$k" --initrd "$i" --timeout "$((case_timeout + 120))" \
            > "$work/soak/log" 2>&1 || soak_st=$?
        sed 's/^/    | /' "$work/soak/log"
        result=$(grep '^SOAK-RESULT' "$work/soak/log")
        if [[ $soak_st -ne 0 || $result != *verdict=PASS* ]]; then
            fail soak "soak.sh exit status $soak_st: $(grep -m1 'soak: FAIL' "$work/soak/log" || echo "${result:-no SOAK-RESULT line}")"
        else
            pass soak
        fi
    fi
fi
