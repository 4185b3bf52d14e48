#!/bin/bash
# l1-monitor-check.sh: checks tools/l1-monitor.sh, nested-run's watch for
# QEMU's lost wake-up of L1's halted CPU: the recogniser against the CPU
# and APIC state CI printed for three frozen L1s (2026-12-05) and against
# states that are not a lost wake-up; the kick against a stand-in QEMU
# monitor that stays stuck until a given command. About a minute, on the
# host.
#
# usage: tests/e2e/l1-monitor-check.sh
# Exit status: 0 every scenario behaved as expected; 1 not (said which).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../tools/l1-monitor.sh
. "$here/../../tools/l1-monitor.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/l1-monitor-check.XXXXXX")
standin=''
trap '[[ -n $standin ]] && kill "$standin" 2>/dev/null; rm -rf "$work"' EXIT
failures=0

# What QEMU 7.2's monitor answered in CI (bootbench-smoke, attempt 1).
stuck_regs='RIP=ffffffff81a592eb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CR0=80050033 CR2=00000000005762b2 CR3=000000010b6f8000 CR4=00750ef0
EFER=0000000000001d01'
stuck_lapic=$'LVTT\t 0x000000ec active-hi edge                 one-shot     Fixed  (vec 236)
Timer\t DCR=0x3 (divide by 16) initial_count = 225323 current_count = 0
ISR\t (none)
IRR\t 236 

APR 0x00 TPR 0x10 DFR 0x0f LDR 0x01 PPR 0x10'
stuck="(qemu) info registers
$stuck_regs
(qemu) info lapic
$stuck_lapic
(qemu) "
# A healthy idle L1 (sampled here): halted, nothing requested.
healthy=${stuck//$'IRR\t 236 '/$'IRR\t (none)'}

# recognise NAME WANT STATE: WANT is the vector l1mon_lost_wakeup must
# print, or '-' for "not a lost wake-up".
recognise() {
    local name=$1 want=$2 got
    got=$(l1mon_lost_wakeup <<< "$3") || got=-
    if [[ $got == "$want" ]]; then
        echo "PASS $name"
    else
        echo "FAIL $name: recognised '$got', wanted '$want'"
        failures=$((failures + 1))
    fi
}

recognise ci-frozen-l1 236 "$stuck"
recognise carriage-returns 236 "${stuck//$'\n'/$'\r\n'}"
recognise healthy-idle - "$healthy"
recognise running - "${stuck/HLT=1/HLT=0}"
recognise interrupts-off - "${stuck/RFL=00000246/RFL=00000046}"
recognise in-service-holds-it - "${stuck/$'ISR\t (none)'/$'ISR\t 239 '}"
recognise priority-holds-it - "${stuck/PPR 0x10/PPR 0xe0}"
recognise highest-of-several 236 "${stuck/$'IRR\t 236 '/$'IRR\t 34 236 48 '}"
recognise no-apic-answer - "$stuck_regs"
recognise no-answer - ''

# The stand-in monitor: reads commands from $L1MON.in, answers the two
# 'info' commands on $L1MON.out with the stuck state until it has read
# the command CURE (never if empty), then with the healthy one; logs
# every command to $work/commands.
start_standin() {
    local cure=$1
    rm -f "$L1MON.in" "$L1MON.out" "$L1MON.kicks" "$work/commands"
    mkfifo "$L1MON.in" "$L1MON.out"
    (
        exec 8<>"$L1MON.in" 9<>"$L1MON.out"
        state=$stuck
        while read -r cmd <&8; do
            echo "$cmd" >> "$work/commands"
            [[ -n $cure && $cmd == "$cure" ]] && state=$healthy
            case $cmd in
            'info registers') sed -n '/^RIP/,/^EFER/p' <<< "$state" >&9 ;;
            'info lapic') sed -n '/^LVTT/,/^APR/p' <<< "$state" >&9 ;;
            esac
        done
    ) &
    standin=$!
}

# kick NAME CURE WANT_STATUS WANT_KICK: l1mon_unstick against a stand-in
# cured by CURE; WANT_KICK is the kick it must record ('' for none).
kick() {
    local name=$1 cure=$2 want_status=$3 want_kick=$4 status=0 got msg
    start_standin "$cure"
    msg=$(l1mon_unstick 2>&1) || status=$?
    kill "$standin" 2>/dev/null
    wait "$standin" 2>/dev/null
    standin=''
    got=$(cat "$L1MON.kicks" 2>/dev/null)
    if [[ $status -ne $want_status || $got != "$want_kick" ]]; then
        echo "FAIL $name: status $status (wanted $want_status), kick '$got' (wanted '$want_kick'); said: $msg"
        failures=$((failures + 1))
    elif [[ $want_status -ne 0 || -n $want_kick ]] && [[ $msg != *"interrupt 236"* ]]; then
        echo "FAIL $name: did not say which interrupt was stuck; said: $msg"
        failures=$((failures + 1))
    elif [[ -n $want_kick && $msg != 'nested-run: KICKED '* ]]; then
        # tools/bootbench counts kicks by this prefix.
        echo "FAIL $name: a kick that worked must be said as 'nested-run: KICKED ...'; said: $msg"
        failures=$((failures + 1))
    else
        echo "PASS $name${msg:+ ($msg)}"
    fi
}

L1MON=$work/mon
kick key-press-cures 'sendkey shift' 0 'sendkey shift'
kick only-nmi-cures nmi 0 nmi
kick nothing-cures '' 1 ''
# A CPU that is not stuck gets no kick.
stuck=$healthy
kick healthy-no-kick '' 0 ''
if grep -qvE '^info (registers|lapic)$' "$work/commands"; then
    echo "FAIL healthy-no-kick: sent more than questions: $(tr '\n' ' ' < "$work/commands")"
    failures=$((failures + 1))
fi

if [[ $failures -ne 0 ]]; then
    echo "l1-monitor-check: $failures scenario(s) FAILED"
    exit 1
fi
echo "l1-monitor-check: every scenario behaved as expected"
