#!/bin/bash
# kvm-check.sh: what this machine's KVM is, and whether the nested L1 (see
# shared/KVM-HERE.md) boots and gets a working /dev/kvm. Prints the host's
# KVM facts, then boots one L1 (tools/nested-run) that reports /dev/kvm,
# kvm_amd's npt parameter and its uptime, and prints the L1 boot time.
#
# usage: tools/kvm-check.sh [--host-only]
# Exit status: 0 when the L1 has a working /dev/kvm (or --host-only), 1 not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

echo "host: kernel $(uname -r), $(nproc) CPUs"
if [[ -c /dev/kvm ]]; then
    echo "host: /dev/kvm present; KVM modules: $(find /sys/module -maxdepth 1 -name 'kvm*' -printf '%f ' 2>/dev/null)"
else
    echo "host: no /dev/kvm"
fi
flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -owE 'vmx|svm' | tr '\n' ' ' || true)
echo "host: CPU virtualization flags: ${flags:-none (no VT-x/AMD-V: stock kernels cannot boot on this KVM)}"
[[ ${1:-} == --host-only ]] && exit 0

script=$(mktemp "${TMPDIR:-/tmp}/kvm-check.XXXXXX")
trap 'rm -f "$script"' EXIT
cat > "$script" <<'EOF'
#!/bin/sh
read -r up _ </proc/uptime
if [ -c /dev/kvm ]; then
    echo "L1-CHECK: /dev/kvm OK, npt=$(cat /sys/module/kvm_amd/parameters/npt), uptime ${up}s"
else
    echo "L1-CHECK: no /dev/kvm"
    exit 1
fi
EOF
start=$(date +%s.%N)
status=0
out=$("$here/nested-run" --no-kvmini --timeout 300 "$script" 2>&1) || status=$?
end=$(date +%s.%N)
printf '%s\n' "$out" | tr -d '\r' | grep -E '^(L1|nested-run)' || true
echo "L1: $(printf '%s\n' "$out" | tr -d '\r' | sed -n 's/^L1: userspace up at \(.*\)$/guest uptime at its \/init: \1/p')," \
     "whole run (QEMU start to exit, cached initramfs):" \
     "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1fs", b - a }')"
exit "$((status == 0 ? 0 : 1))"
