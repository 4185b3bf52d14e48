/* Tiny guests for the host-KVM plumbing tests. Each is copied into guest
 * memory at the address its test uses; they report over ports 0xe0-0xef
 * and MMIO at 0xd0000000 (the test device in test_tiny_guests.c). */
	.section .rodata

/* Real mode, loaded at 0x1000: byte/word OUT, IN from the device, IN from
 * an unclaimed port (expects 0xff), a string OUT, then HLT. */
	.code16
	.globl guest_real_start, guest_real_end
guest_real_start:
	mov $0x4b, %al
	out %al, $0xe0
	mov $0xe2, %dx
	mov $0x1234, %ax
	out %ax, %dx
	in $0xe4, %al
	out %al, $0xe1
	mov $0x2f0, %dx
	in %dx, %al
	out %al, $0xe6
	mov $(real_msg - guest_real_start + 0x1000), %si
	mov $3, %cx
	mov $0xe8, %dx
	cld
	rep outsb
	hlt
real_msg:
	.ascii "abc"
guest_real_end:


/* Real mode, loaded at 0x1000: one OUT, then the stop port, then spin:
 * only the VMM's stop request can end it. */
	.globl guest_spin_start, guest_spin_end
guest_spin_start:
	mov $0x53, %al
	out %al, $0xe0
	out %al, $0xef
1:	jmp 1b
guest_spin_end:

/* Long mode (64-bit boot entry, identity-mapped), loaded at 0x100000:
 * 8-byte MMIO write, 4-byte MMIO read echoed to a port, RSI echoed, HLT. */
	.code64
	.globl guest_long_start, guest_long_end
guest_long_start:
	movl $0xd0000000, %ebx
	movabsq $0x1122334455667788, %rax
	movq %rax, (%rbx)
	movl 8(%rbx), %eax
	out %eax, $0xe4
	movl %esi, %eax
	out %eax, $0xe8
	hlt
guest_long_end:

/* Long mode, loaded at 0x100000: the boot IDT has limit 0, so UD2's #UD
 * cannot be delivered -> #GP -> #DF -> triple fault (KVM_EXIT_SHUTDOWN). */
	.globl guest_triple_start, guest_triple_end
guest_triple_start:
	ud2
guest_triple_end:

	.section .note.GNU-stack, "", @progbits
