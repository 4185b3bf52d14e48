#!/bin/bash
# Builds kvmini's libFuzzer targets (tests/fuzz/) with Debian's clang,
# ASan and UBSan in their own build directory, and runs each for a set
# time from the seed corpus it writes itself, two targets at a time.
#
#   tools/fuzz.sh [--time SECS] [--jobs N] [TARGET...]
#
# TARGET is vq, blk, net, virtio_pci, virtio_mmio, serial, bzimage, elf, config or fs
# (or fuzz_<name>); default all. Prints per target the executions, the
# final coverage (libFuzzer's cov: edges and ft: features) and any crash
# file; exits 1 if a target crashed, leaked, hung or did not run.
# Corpora persist in build-libfuzzer/fuzz-work/corpus/ so later runs go deeper;
# crash reproducers land in build-libfuzzer/fuzz-work/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(vq blk net net_stream virtio_pci virtio_mmio serial bzimage elf config fs)
secs=60
jobs=2
targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--time) secs=$2; shift 2 ;;
	--time=*) secs=${1#--time=}; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	--jobs=*) jobs=${1#--jobs=}; shift ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
	*) targets+=("${1#fuzz_}"); shift ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
	[[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (one of: ${ALL[*]})" >&2; exit 2; }
done

command -v clang >/dev/null || { echo "fuzz.sh: clang not found: run tools/install-deps" >&2; exit 1; }

BUILD=build-libfuzzer
# Coverage and sanitizers on every object (kvmini's core too); the fuzz
# executables add -fsanitize=fuzzer at link time (tests/fuzz/meson.build).
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dfuzzing=true -Db_sanitize=none -Db_lundef=false \
		-Dbuildtype=debugoptimized -Dc_args="-fsanitize=fuzzer-no-link $SAN" \
		-Dc_link_args="$SAN" >/dev/null
fi
# Quiet when it builds; the compiler's messages when it does not.
if ! out=$(ninja -C "$BUILD" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") 2>&1); then
	echo "$out" | grep -E 'error|FAILED' | head -n 20 >&2
	echo "fuzz.sh: building the fuzz targets failed (see above)" >&2
	exit 1
fi

WORK=$BUILD/fuzz-work
mkdir -p "$WORK/logs" "$WORK/crashes" "$WORK/seeds" "$WORK/corpus"

run_one() { # target
	local t=$1 bin=$BUILD/tests/fuzz/fuzz_$1
	local seeds=$WORK/seeds/$t corpus=$WORK/corpus/$t
	rm -rf "$seeds"
	mkdir -p "$corpus"
	rm -f "$WORK/crashes/$t"-*
	"$bin" --write-seeds "$seeds" || { echo "seed generation failed" >"$WORK/logs/$t.log"; return; }
	# -timeout: one input running 25 s is a hang; the rss limit catches
	# runaway allocation; leaks are reported at the end (LeakSanitizer).
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	"$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$WORK/crashes/$t-" "$corpus" "$seeds" >"$WORK/logs/$t.log" 2>&1 || true
}
export -f run_one
export BUILD WORK secs

echo "fuzz.sh: ${#targets[@]} target(s), ${secs}s each, $jobs at a time (logs in $WORK/logs)"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

status=0
printf '%-18s %12s %8s %8s  %s\n' target executions cov ft result
for t in "${targets[@]}"; do
	log=$WORK/logs/$t.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	crashes=$(ls "$WORK/crashes/$t"-* 2>/dev/null || true)
	if [ -n "$crashes" ]; then
		result="CRASH: $(tr '\n' ' ' <<<"$crashes")"
		status=1
	elif ! grep -q '^Done [0-9]* runs' "$log"; then
		result="FAILED (see $log)"
		status=1
	else
		result=ok
	fi
	printf '%-18s %12s %8s %8s  %s\n' "fuzz_$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
