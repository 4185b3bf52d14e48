# tools/lib.sh: what the scripts in tools/ share. Source it (bash):
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# tools/nested-run puts a copy at /payload/lib.sh in the L1 machine, so a
# script run there (as /payload/script) finds it the same way.
#
#   die MSG...            "PROG: MSG" on stderr, exit $LIB_DIE_STATUS (1
#                         unless set; PROG: $LIB_PROG, else the script's name)
#   cache_build NAME EXT KEY BUILD
#                         the cached output $KVMINI_CACHE/NAME-KEY16.EXT:
#                         built once per KEY by the function BUILD (called
#                         with the path to write), under a lock, so parallel
#                         builds and checkouts with other versions of a
#                         script share one cache; prints the path. Outputs
#                         unused for a day are removed.
#   vmm_cmd ROW [OPTIONS] sets the array cmd to the command line that boots
#                         the guest with VMM row ROW: every benchmark and
#                         soak builds its VMM command lines here, so rows
#                         stay comparable.
#   l1_watch TAG SECONDS [PULSE]
#                         in the background, every PULSE s (default
#                         SECONDS): one line on the machine's state
#                         (uptime, load, free memory); every SECONDS also
#                         every thread that is running or in an
#                         uninterruptible wait (with where it waits), plus
#                         every kvmini, vCPU and QEMU thread; each line
#                         prefixed TAG. For scripts run in the nested L1: a
#                         run that hangs past every bound then says where
#                         in its log, and the short line is the pulse by
#                         which nested-run --stall tells a live L1 from a
#                         frozen one. Sets l1_watch_pid; kill it when done.
#   kvm_snap              in L1: KVM's counters for the one VM running now
#                         (L1's debugfs, mounted by the caller) and its
#                         VMM's CPU time, one line of KEY=VALUE (exits
#                         io_exits mmio_exits irq_injections halt_exits
#                         guest_ms vmm_ms); empty when no VM or no debugfs
#   kvm_record ROW FIG UNITS BEFORE AFTER
#                         the change between two kvm_snap lines divided
#                         by UNITS (MiB moved, files...), as "ROW FIG KEY
#                         VALUE" lines appended to $KVM_COUNTERS
#   median                the median of the numbers on stdin ("-": none)
#   ratio A B             A / B to two places, "-" when either is missing
#   guest_modules_tar OUT [XZ-NAME...]
#                         the guest kernel's modules ($MODULES_DIR, from
#                         fetch-debian.sh) that kvmini's own initramfs
#                         takes (--modules) for the virtio devices,
#                         virtio-fs (--rootfs, --share), overlay, ext4 and
#                         pvpanic, as a tar of a tree laid out as the
#                         package's (no depmod index); the modules named
#                         XZ-NAME xz-compressed, as newer distributions
#                         ship them
#   l1_insmod NAME...     in L1: loads each module NAME from the payload
#                         (PAYLOAD_FILES/NAME.ko, as run-nested.sh copies
#                         them) unless /sys/module/NAME exists; in order,
#                         so dependencies first; 0, or 1 with l1_why
#   procs_named NAME      the pids of the processes whose command is NAME,
#                         space-separated (L1's busybox has no pgrep)
#   stat_fields FILE...   /proc stat lines without "pid (comm) ": proc(5)'s
#                         field N is awk's $(N-2)
#   batch_threads PID...  how many threads of these processes run
#                         SCHED_BATCH (policy 3, /proc's stat field 41)
#   l1_passt_network      L1 as passt needs it (passt copies the host's
#                         addresses and routes): lo up and a dummy interface
#                         l1dummy0 with 10.0.2.15/24 and a default route via
#                         10.0.2.2 (nothing leaves L1); loads dummy.ko from
#                         the payload; 0, or 1 with the reason in l1_why.

die() {
	echo "${LIB_PROG:-$(basename "$0")}: $*" >&2
	exit "${LIB_DIE_STATUS:-1}"
}

cache_build() {
	local name=$1 ext=$2 key=$3 build=$4 out
	[[ -n ${KVMINI_CACHE:-} ]] || die "cache_build: KVMINI_CACHE is not set"
	mkdir -p "$KVMINI_CACHE"
	out=$KVMINI_CACHE/$name-${key:0:16}.$ext
	(
		exec 9> "$out.lock"
		flock 9
		if [[ -e $out && -f $out.key && $(cat "$out.key") == "$key" ]]; then
			touch "$out"
			exit 0
		fi
		find "$KVMINI_CACHE" -maxdepth 1 -name "$name-*.$ext*" ! -name "$(basename "$out")*" \
			-mmin +1440 -exec rm -rf {} + 2>/dev/null || true
		rm -rf "$out" "$out.key"
		"$build" "$out" || exit 1
		echo "$key" > "$out.key"
	) || die "building $out failed"
	echo "$out"
}

# vmm_cmd ROW [--kernel K] [--initrd I] [--cmdline C] [--cpus N]
#         [--memory SIZE] [--disk IMG] [--snapshot] [--tap NAME]
#         [--user-net FWD] [--stream-net SOCKET] [--share DIR:TAG]
#         [-- KVMINI-ONLY-ARGS...]
# ROW: kvmini-bzimage (kvmini, the bzImage), kvmini-pvh (kvmini --boot
# pvh), qemu-pc (QEMU -accel kvm, default machine, the bzImage),
# qemu-pvh (QEMU -M pc, the ELF vmlinux $VMLINUX through its PVH note),
# qemu-microvm, lkvm (kvmtool, $LKVM). QEMU's guest gets the CPU kvmini's
# gets by default (-cpu host without la57, svm, vmx): QEMU's own default,
# qemu64, has none of the host's newer features, and the guest kernel
# picks other routines for it (in the emulated L1, a download over a tap
# then took the guest 7.7 ms of CPU per MiB under qemu64 and 14.7 under
# the host's CPU: an unlike comparison). Defaults: $GUEST_KERNEL,
# $GUEST_INITRD, "console=ttyS0 quiet", 1 vCPU, 512M. Disks are virtio-blk
# and taps virtio-net over PCI for every VMM; arguments after -- go to
# kvmini rows only (--exec, --report, --timeout...). User-mode networks:
# --user-net FWD (kvmini --net user,hostfwd=FWD; QEMU -netdev user, its
# slirp, with the same hostfwd) and --stream-net SOCKET (QEMU only:
# -netdev stream to a passt listening on SOCKET, MTU 65520 as kvmini
# offers); on QEMU rows these also name the NIC to kvmini's init for
# DHCP (kvmini.dhcp=, which kvmini adds itself). --share DIR:TAG: host
# folder DIR as TAG (kvmini --share, its virtio-fs; QEMU -virtfs local with
# security_model=none, its virtio-9p, which the guest mounts itself).
vmm_cmd() {
	local row=$1 kernel=${GUEST_KERNEL:-} initrd=${GUEST_INITRD:-}
	local cmdline="console=ttyS0 quiet" cpus=1 memory=512M disk='' snapshot=0 tap=''
	local user_fwd='' stream_sock='' qemu_mac=52:54:00:12:34:56 share=''
	local extra=()
	shift
	while [[ $# -gt 0 ]]; do
		case $1 in
		--kernel) kernel=$2; shift ;;
		--initrd) initrd=$2; shift ;;
		--cmdline) cmdline=$2; shift ;;
		--cpus) cpus=$2; shift ;;
		--memory) memory=$2; shift ;;
		--disk) disk=$2; shift ;;
		--snapshot) snapshot=1 ;;
		--tap) tap=$2; shift ;;
		--user-net) user_fwd=$2; shift ;;
		--stream-net) stream_sock=$2; shift ;;
		--share) share=$2; shift ;;
		--) shift; extra=("$@"); break ;;
		*) die "vmm_cmd: unknown option '$1'" ;;
		esac
		shift
	done
	local qemu_common=(-accel kvm -cpu host,la57=off,svm=off,vmx=off -nodefaults -nographic -serial stdio -no-reboot
			   -smp "$cpus" -m "$memory")
	case $row in
	kvmini-bzimage|kvmini-pvh)
		cmd=("${KVMINI:-kvmini}" run --kernel "$kernel" --cmdline "$cmdline"
		     --cpus "$cpus" --memory "$memory")
		[[ -n $initrd ]] && cmd+=(--initrd "$initrd")
		[[ $row == kvmini-pvh ]] && cmd+=(--boot pvh)
		if [[ -n $disk ]]; then
			if [[ $snapshot -eq 1 ]]; then cmd+=(--disk "$disk,snapshot"); else cmd+=(--disk "$disk"); fi
		fi
		[[ -n $tap ]] && cmd+=(--net "tap=$tap")
		[[ -n $user_fwd ]] && cmd+=(--net "user,hostfwd=$user_fwd")
		[[ -n $stream_sock ]] && die "vmm_cmd: --stream-net is for QEMU rows (kvmini starts its own passt: --user-net)"
		[[ -n $share ]] && cmd+=(--share "$share")
		cmd+=(${extra[@]+"${extra[@]}"})
		return 0 ;;
	qemu-pc)
		cmd=("${QEMU:-qemu-system-x86_64}" "${qemu_common[@]}" -kernel "$kernel") ;;
	qemu-pvh)
		[[ -n ${VMLINUX:-} ]] || die "vmm_cmd qemu-pvh: VMLINUX (the ELF vmlinux) is not set"
		cmd=("${QEMU:-qemu-system-x86_64}" "${qemu_common[@]}" -kernel "$VMLINUX") ;;
	qemu-microvm)
		# microvm's default ACPI (a GED device) lets `poweroff -f` end it;
		# -no-reboot ends it on any reset (it has no i8042 for reboot=k).
		cmd=("${QEMU:-qemu-system-x86_64}" "${qemu_common[@]}" -M microvm -kernel "$kernel") ;;
	lkvm)
		[[ -x ${LKVM:-} ]] || die "vmm_cmd lkvm: LKVM (a kvmtool binary) is not set"
		cmd=("$LKVM" run -k "$kernel" -c "$cpus" -m "${memory%M}" --console serial -p "$cmdline")
		[[ -n $initrd ]] && cmd+=(-i "$initrd")
		[[ -n $disk ]] && cmd+=(-d "$disk")
		[[ -n $tap ]] && cmd+=(-n "mode=tap,tapif=$tap")
		[[ -n $share ]] && die "vmm_cmd: --share has no lkvm row"
		return 0 ;;
	*) die "vmm_cmd: unknown row '$row'" ;;
	esac
	# The QEMU rows.
	[[ -n $initrd ]] && cmd+=(-initrd "$initrd")
	[[ -n $share ]] && cmd+=(-virtfs "local,path=${share%:*},mount_tag=${share##*:},security_model=none,id=fs0")
	[[ -n $user_fwd || -n $stream_sock ]] && cmdline+=" kvmini.dhcp=$qemu_mac"
	cmd+=(-append "$cmdline")
	if [[ -n $disk ]]; then
		local opts="file=$disk,if=none,id=d0,format=raw,cache=writeback"
		[[ $snapshot -eq 1 ]] && opts+=",snapshot=on"
		cmd+=(-drive "$opts" -device virtio-blk-pci,drive=d0)
	fi
	if [[ -n $tap ]]; then
		# L1 has no vhost-net and no option ROM for virtio-net-pci.
		cmd+=(-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=off"
		      -device virtio-net-pci,netdev=n0,romfile=)
	fi
	if [[ -n $user_fwd ]]; then
		cmd+=(-netdev "user,id=n0,hostfwd=$user_fwd"
		      -device "virtio-net-pci,netdev=n0,romfile=,mac=$qemu_mac")
	fi
	if [[ -n $stream_sock ]]; then
		cmd+=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$stream_sock"
		      -device "virtio-net-pci,netdev=n0,romfile=,mac=$qemu_mac,host_mtu=65520")
	fi
	return 0
}

l1_watch() {
	local tag=$1 every=$2 pulse=${3:-$2}
	(
		# Threads vanish while it looks: a failed read must not end it
		# under the caller's set -e.
		set +e
		local p t st comm since=0
		while sleep "$pulse"; do
			echo "$tag: L1 up $(cut -d' ' -f1 /proc/uptime) s, load $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo) MiB available"
			since=$((since + pulse))
			((since < every)) && continue
			since=0
			for p in /proc/[0-9]*; do
				for t in "$p"/task/[0-9]*; do
					st=$(awk '{ print $3 }' "$t/stat" 2>/dev/null) comm=$(cat "$t/comm" 2>/dev/null)
					[[ $st == [RD] || $comm == kvmini* || $comm == vcpu* || $comm == qemu* ]] || continue
					[[ $comm == awk || $comm == cat ]] && continue
					echo "$tag:   pid ${p#/proc/} tid ${t##*/} $comm state $st wchan $(cat "$t/wchan" 2>/dev/null)"
				done
			done
		done
	) &
	l1_watch_pid=$!
}

l1_passt_network() {
	local pf=${PAYLOAD_FILES:-/payload/files}
	l1_why=
	ip link set lo up
	ip link show l1dummy0 >/dev/null 2>&1 && return 0
	[[ -d /sys/module/dummy ]] || insmod "$pf/dummy.ko" 2>/dev/null ||
		{ l1_why="cannot load the dummy module ($pf/dummy.ko)"; return 1; }
	ip link add l1dummy0 type dummy && ip addr add 10.0.2.15/24 dev l1dummy0 &&
		ip link set l1dummy0 up && ip route add default via 10.0.2.2 dev l1dummy0 ||
		{ l1_why="cannot set up l1dummy0 with a default route"; return 1; }
}

# /proc stat lines without their "pid (comm) ", so that proc(5)'s field N
# is awk's $(N-2) (a command name may hold spaces and parentheses).
stat_fields() { cat "$@" 2>/dev/null | sed 's/^.*) //'; }

batch_threads() {
	local p
	for p in "$@"; do stat_fields /proc/"$p"/task/*/stat; done | awk '$39 == 3 { n++ } END { print n + 0 }'
}

procs_named() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(cat "$p/comm" 2>/dev/null) == "$1" ]] && printf '%s ' "${p#/proc/}"
	done
	return 0
}

# guest_ms: the vCPUs' time in the guest; vmm_ms: every thread's time
# outside it (device emulation, exit handling in L1's kernel, the I/O
# threads); from /proc/PID/task/*/stat in USER_HZ (100) ticks.
kvm_snap() {
	local d pid f line=''
	d=$(ls -d /sys/kernel/debug/kvm/[0-9]*-[0-9]* 2>/dev/null | head -n 1)
	[[ -n $d ]] || return 0
	pid=${d##*/}
	pid=${pid%%-*}
	for f in exits io_exits mmio_exits irq_injections halt_exits; do
		line+="$f=$(cat "$d/$f" 2>/dev/null || echo 0) "
	done
	line+=$(stat_fields /proc/"$pid"/task/*/stat | awk 'NF >= 41 { g += $41; h += $12 + $13 - $41 }
		END { printf "guest_ms=%d vmm_ms=%d", g * 10, h * 10 }')
	echo "$line"
}

kvm_record() {
	[[ -n $4 && -n $5 ]] || return 0
	awk -v row="$1" -v fig="$2" -v units="$3" -v a="$4" -v b="$5" 'BEGIN {
		n = split(a, x, " "); for (i = 1; i <= n; i++) { split(x[i], kv, "="); before[kv[1]] = kv[2] }
		n = split(b, y, " ")
		for (i = 1; i <= n; i++) {
			split(y[i], kv, "=")
			printf "%s %s %s %.1f\n", row, fig, kv[1], (kv[2] - before[kv[1]]) / units
		}
	}' >> "${KVM_COUNTERS:?kvm_record: KVM_COUNTERS is not set}"
}

median() {
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		printf "%.1f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}

guest_modules_tar() {
	local out=$1 stage m
	shift
	stage=$(mktemp -d "${TMPDIR:-/tmp}/guest-modules.XXXXXX") || return 1
	for m in pvpanic pvpanic-mmio virtio virtio_ring virtio_pci virtio_pci_modern_dev \
		 virtio_pci_legacy_dev virtio_mmio virtio_blk virtio_net net_failover failover \
		 virtio_console ext4 jbd2 mbcache crc16 crc32c_generic crc32c-intel overlay fuse virtiofs; do
		(cd "${MODULES_DIR:?}" && find kernel -name "$m.ko" -exec cp --parents {} "$stage" \;)
	done
	cp "$MODULES_DIR/modules.builtin" "$MODULES_DIR/modules.order" "$stage/" &&
	for m in "$@"; do
		find "$stage" -name "$m.ko" -exec xz -0 {} \; || return 1
	done &&
	tar -cf "$out" -C "$stage" .
	local st=$?
	rm -rf "$stage"
	return $st
}

l1_insmod() {
	local pf=${PAYLOAD_FILES:-/payload/files} m
	l1_why=
	for m in "$@"; do
		[[ -d /sys/module/$m ]] || insmod "$pf/$m.ko" 2>/dev/null ||
			{ l1_why="cannot load $m.ko in L1 (from $pf)"; return 1; }
	done
}
