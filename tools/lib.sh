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
#         [-- KVMINI-ONLY-ARGS...]
# ROW: kvmini-bzimage (kvmini, the bzImage), kvmini-pvh (kvmini --boot
# pvh), qemu-pc (QEMU -accel kvm, default machine, the bzImage),
# qemu-pvh (QEMU -M pc, the ELF vmlinux $VMLINUX through its PVH note),
# qemu-microvm, lkvm (kvmtool, $LKVM). Defaults: $GUEST_KERNEL,
# $GUEST_INITRD, "console=ttyS0 quiet", 1 vCPU, 512M. Disks are virtio-blk
# and taps virtio-net over PCI for every VMM; arguments after -- go to
# kvmini rows only (--exec, --report, --timeout...). User-mode networks:
# --user-net FWD (kvmini --net user,hostfwd=FWD; QEMU -netdev user, its
# slirp, with the same hostfwd) and --stream-net SOCKET (QEMU only:
# -netdev stream to a passt listening on SOCKET, MTU 65520 as kvmini
# offers); on QEMU rows these also name the NIC to kvmini's init for
# DHCP (kvmini.dhcp=, which kvmini adds itself).
vmm_cmd() {
	local row=$1 kernel=${GUEST_KERNEL:-} initrd=${GUEST_INITRD:-}
	local cmdline="console=ttyS0 quiet" cpus=1 memory=512M disk='' snapshot=0 tap=''
	local user_fwd='' stream_sock='' qemu_mac=52:54:00:12:34:56
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
		--) shift; extra=("$@"); break ;;
		*) die "vmm_cmd: unknown option '$1'" ;;
		esac
		shift
	done
	local qemu_common=(-accel kvm -nodefaults -nographic -serial stdio -no-reboot
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
		return 0 ;;
	*) die "vmm_cmd: unknown row '$row'" ;;
	esac
	# The QEMU rows.
	[[ -n $initrd ]] && cmd+=(-initrd "$initrd")
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
