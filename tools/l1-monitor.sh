# tools/l1-monitor.sh: QEMU's monitor of the emulated L1 machine, sourced
# by tools/nested-run. The monitor is on two FIFOs, $L1MON.in and
# $L1MON.out (QEMU's -monitor pipe:$L1MON).
#
# What it is for: QEMU 7.2's TCG sometimes loses the wake-up of L1's
# halted CPU. L1 sits in its idle loop's `sti; hlt`, interrupts on, its
# local APIC holding a requested vector (the timer's, 236) above the
# processor priority with nothing in service, and nothing ever delivers
# it: L1 is silent for good (seen in CI: three L1s of one bootbench run).
# A healthy CPU takes such an interrupt within microseconds, so seeing it
# twice, seconds apart, is the lost wake-up, and a new event (a key press
# through the i8042, then an NMI) may get the CPU going again.
#
# shellcheck shell=bash

# l1mon_ask WAIT CMD...: send each monitor command, wait WAIT s, print
# what the monitor answered (carriage returns dropped).
l1mon_ask() {
    local wait=$1 cmd
    shift
    exec 7<>"$L1MON.out"
    for cmd in "$@"; do
        printf '%s\n' "$cmd" > "$L1MON.in"
        sleep 0.3
    done
    sleep "$wait"
    timeout 2 cat <&7 | tr -d '\r'
    exec 7<&-
}

# l1mon_cpu_state: the CPU and local APIC lines of a monitor answer
# (stdin), for a freeze report: each line begins with nested-run's own
# prefix, so whoever filters nested-run's lines keeps them without naming
# QEMU's.
l1mon_cpu_state() {
    grep -E '^(RIP|EIP|CR0|EFER)=|^(LVTT|Timer|ISR|IRR|APR)\b' | sed 's/^/nested-run:     /'
}

# l1mon_lost_wakeup: reads one answer to 'info registers' and 'info lapic'
# (stdin); when the CPU is halted with interrupts on, nothing in service
# and a requested vector above the processor priority, prints that vector
# and returns 0; else returns 1.
l1mon_lost_wakeup() {
    local line rfl='' hlt=0 isr='' irr='' ppr='' vec=-1 v
    while IFS= read -r line; do
        line=${line%$'\r'}
        if [[ $line =~ ^[RE]IP=.*RFL=([0-9a-fA-F]+).*HLT=([01]) ]]; then
            rfl=${BASH_REMATCH[1]} hlt=${BASH_REMATCH[2]}
        elif [[ $line =~ ^ISR[[:space:]](.*)$ ]]; then
            isr=${BASH_REMATCH[1]}
        elif [[ $line =~ ^IRR[[:space:]](.*)$ ]]; then
            irr=${BASH_REMATCH[1]}
        elif [[ $line =~ ^APR.*PPR\ 0x([0-9a-fA-F]+) ]]; then
            ppr=${BASH_REMATCH[1]}
        fi
    done
    [[ -n $rfl && -n $ppr && $hlt == 1 ]] || return 1
    (( 0x$rfl & 0x200 )) || return 1            # interrupts off: no wake-up due
    [[ $isr =~ ^[[:space:]]*\(none\)[[:space:]]*$ ]] || return 1
    for v in $irr; do
        [[ $v =~ ^[0-9]+$ ]] || return 1
        ((v > vec)) && vec=$v
    done
    ((vec >= 0 && (vec >> 4) > (0x$ppr >> 4))) || return 1
    echo "$vec"
}

# l1mon_stuck_vector: asks QEMU now; prints the vector of a lost wake-up
# and returns 0, or returns 1 (see l1mon_lost_wakeup).
l1mon_stuck_vector() {
    l1mon_ask 1 'info registers' 'info lapic' | l1mon_lost_wakeup
}

# l1mon_unstick: when L1's CPU shows the lost wake-up twice, 2 s apart,
# kick it with a key press, then (if still stuck) an NMI. Prints one
# line for what it did (a kick that worked as "nested-run: KICKED ...",
# the line tools/bootbench counts), appends the kick to $L1MON.kicks;
# returns 0 when there was nothing to do or a kick worked, 1 when nothing
# woke the CPU.
l1mon_unstick() {
    local vec kick
    vec=$(l1mon_stuck_vector) || return 0
    sleep 2
    [[ $(l1mon_stuck_vector) == "$vec" ]] || return 0
    for kick in 'sendkey shift' nmi; do
        l1mon_ask 0 "$kick" > /dev/null
        sleep 3
        if [[ $(l1mon_stuck_vector) != "$vec" ]]; then
            echo "nested-run: KICKED L1's CPU: it sat halted with interrupt $vec requested and undelivered (QEMU TCG lost its wake-up); monitor '$kick' woke it" >&2
            echo "$kick" >> "$L1MON.kicks"
            return 0
        fi
    done
    echo "nested-run: L1's CPU sits halted with interrupt $vec requested and undelivered (QEMU TCG lost its wake-up); neither a key press nor an NMI woke it" >&2
    return 1
}
