# guest-session.sh: talk with a guest shell step by step (sourced by
# tests/e2e/cases-virtio.sh and tools/bench-io.sh, inside the nested L1).
# session_start runs a VMM command with a FIFO as its stdin and the console
# captured; session_prompt / session_expect wait for output; session_send
# types; session_end closes stdin and collects the exit status. Guest
# commands print results as NAME=value at the start of a line (read with
# session_value), so the echo of the typed command, which starts with the
# prompt, does not match; but busybox's shell wraps that echo at 80
# columns (the console reports no size), so a marker that lands at the
# start of a wrapped line would: a long command types it as NAME""=
# (the shell joins the quotes away; cases-net.sh's net-user does).
#
# Uses: $session_timeout (seconds, default 120). Sets: $dir (the session's
# folder: out, err, txt), $session_pid, $st (exit status after session_end).

# A write to a VMM that already exited must not end the caller.
trap "" PIPE

# session_start DIR CMD...: CMD runs with KVMINI_LOG=debug and
# KVMINI_DUMP_ON_EXIT=1 (boot milestones and vCPU state, for failures).
session_start() {
    dir=$1
    shift
    mkdir -p "$dir"
    rm -f "$dir/in"
    mkfifo "$dir/in"
    KVMINI_LOG=debug KVMINI_DUMP_ON_EXIT=1 \
        timeout -k 5 "${session_timeout:-120}" "$@" < "$dir/in" > "$dir/out" 2> "$dir/err" &
    session_pid=$!
    exec 5> "$dir/in"
    session_watch_pid=
}

# session_watch LABEL: a progress line every minute while the VMM runs (how
# long, how much console, L1's load, the console's last line), so a slow or
# stuck guest shows where it is in the log of a long case.
session_watch() {
    local label=$1 t0=$SECONDS
    (
        while sleep 60 && kill -0 "$session_pid" 2>/dev/null; do
            echo "    ($label: $((SECONDS - t0)) s: console $(stat -c %s "$dir/out") bytes," \
                "L1 load $(cut -d' ' -f1-3 /proc/loadavg), last line:" \
                "'$(tail -c 400 "$dir/out" | tr '\r' '\n' | _console_text | tr -cd '[:print:]\n' | grep -v '^$' | tail -n 1 | cut -c1-100)')"
        done
    ) &
    session_watch_pid=$!
}

# session_wait_for CHECK-COMMAND...: poll until it succeeds (0) or the VMM
# ends or $session_timeout seconds of wall-clock time pass (1). A deadline,
# not a count of polls: in the emulated L1 one poll can take a second.
session_wait_for() {
    local deadline=$((SECONDS + ${session_timeout:-120}))
    until "$@"; do
        kill -0 "$session_pid" 2>/dev/null || { "$@"; return; }
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# The console (stdin) as lines of text: no CRs, no terminal control sequences
# (bash's bracketed-paste ESC[?2004l starts the line after each command).
_console_text() { tr -d '\r' | sed "s/"$'\033'"\\[[0-9;?]*[a-zA-Z]//g"; }
# Only the console's last 256 KiB: what is awaited was just asked for, and
# a poll must stay cheap however much a guest prints.
_console_has() { tail -c 262144 "$dir/out" | _console_text | grep -qaE "$1"; }
_prompt_last() { tail -c 12 "$dir/out" | grep -q '# '; }

# session_expect ERE: a console line matches.
session_expect() { session_wait_for _console_has "$1"; }
# session_prompt: the shell prompt ends the output.
session_prompt() { session_wait_for _prompt_last; }
session_send() { printf '%b' "$1" >&5 2>/dev/null; }

session_end() {
    exec 5>&-
    [[ -z $session_watch_pid ]] || kill "$session_watch_pid" 2>/dev/null
    st=0
    wait "$session_pid" 2>/dev/null || st=$? # no "Killed" notice from bash
    _console_text < "$dir/out" > "$dir/txt"
}

# session_value NAME: the last NAME=value line of the console (after session_end,
# or live when called before it).
session_value() {
    local f=$dir/txt
    [[ -f $f ]] || f=$dir/out
    _console_text < "$f" | grep -aE "^$1=" | tail -n 1 | cut -d= -f2-
}
