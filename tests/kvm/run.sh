#!/bin/bash
# run.sh TEST-BINARY: runs one tiny-guest test (tests/kvm) where KVM can
# run it: on this host when its /dev/kvm opens, otherwise inside the
# nested L1 machine (tools/nested-run), whose KVM is kvm_amd on emulated
# AMD-V. Either way the test really runs; the output says where.
# Exit status: the test's; 125 when neither could run it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:?usage: run.sh TEST-BINARY}

if [[ -c /dev/kvm ]] && (exec 3<>/dev/kvm) 2>/dev/null; then
    echo "kvm tests: running $(basename "$bin") on this host's /dev/kvm"
    exec "$bin"
fi
echo "kvm tests: this host has no usable /dev/kvm ($( [[ -c /dev/kvm ]] && echo "it does not open" || echo "no KVM device node")):" \
     "running $(basename "$bin") inside the nested L1 instead"
script=$(mktemp "${TMPDIR:-/tmp}/kvm-test.XXXXXX")
trap 'rm -f "$script"' EXIT
cat > "$script" <<'SCRIPT'
#!/bin/sh
/usr/bin/kvm-test
SCRIPT
exec "$repo/tools/nested-run" --no-kvmini --smp 1 --timeout 600 \
    --bin "$bin:/usr/bin/kvm-test" "$script"
