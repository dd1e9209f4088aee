/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/tinyguest/tiny.S - a tiny "kernel" for the VM library tests on
 * this host's /dev/kvm (an instruction emulator that cannot run Linux).
 * mktinyguest.sh wraps it in a bzImage header, so vivarium's direct boot
 * path enters it in 64-bit mode at load address + 0x200, RSP set.
 *
 * It prints "TINY-GUEST: ready" on COM1, then sleeps in hlt; it
 *  - echoes what arrives on COM1, letters upper-cased (so the echo is the
 *    guest's, not a loopback), through IRQ 4 -> IOAPIC pin 4 -> vector 0x31;
 *  - reacts to the ACPI power button (PWRBTN_EN set; SCI = IRQ 9 ->
 *    IOAPIC pin 9, level -> vector 0x30) by printing "TINY-GUEST: power
 *    button" and powering off through PM1_CNT (SLP_TYP 5, SLP_EN).
 * Position independent: every address is RIP-relative or fixed hardware.
 */
	.intel_syntax noprefix
	.text
	.code64
	.globl _start
_start:
	cli
	/* Mask both 8259s: interrupts come through the IOAPIC only. */
	mov al, 0xff
	out 0x21, al
	out 0xa1, al

	lea rsi, [rip + msg_ready]
	call puts

	/* IDT gates for 0x30 and 0x31 (64-bit interrupt gates, CS 0x10). */
	lea rdi, [rip + idt + 0x30 * 16]
	lea rax, [rip + isr_power]
	call set_gate
	lea rdi, [rip + idt + 0x31 * 16]
	lea rax, [rip + isr_serial]
	call set_gate
	lea rax, [rip + idt]
	mov [rip + idtr_base], rax
	lidt [rip + idtr]

	/* Local APIC on (SVR: software enable, spurious vector 0xff). */
	mov ebx, 0xfee00000	/* local APIC (zero-extended to rbx) */
	mov ecx, 0xfec00000	/* IOAPIC: IOREGSEL +0, IOWIN +0x10 */
	mov dword ptr [rbx + 0xf0], 0x1ff
	/* IOAPIC pin 9: vector 0x30, level, active high, APIC 0. */
	mov dword ptr [rcx], 0x10 + 2 * 9 + 1
	mov dword ptr [rcx + 0x10], 0
	mov dword ptr [rcx], 0x10 + 2 * 9
	mov dword ptr [rcx + 0x10], 0x8030
	/* IOAPIC pin 4: vector 0x31, edge, active high, APIC 0. */
	mov dword ptr [rcx], 0x10 + 2 * 4 + 1
	mov dword ptr [rcx + 0x10], 0
	mov dword ptr [rcx], 0x10 + 2 * 4
	mov dword ptr [rcx + 0x10], 0x0031

	/* PM1_EN: PWRBTN_EN. */
	mov dx, 0x602
	mov ax, 0x0100
	out dx, ax
	/* COM1: receive interrupt on, OUT2 (the PC's IRQ gate). */
	mov dx, 0x3f9
	mov al, 0x01
	out dx, al
	mov dx, 0x3fc
	mov al, 0x08
	out dx, al

idle:
	sti
	hlt
	jmp idle

/* rdi: gate address, rax: handler. */
set_gate:
	mov word ptr [rdi], ax
	mov word ptr [rdi + 2], 0x10
	mov word ptr [rdi + 4], 0x8e00
	shr rax, 16
	mov word ptr [rdi + 6], ax
	shr rax, 16
	mov dword ptr [rdi + 8], eax
	mov dword ptr [rdi + 12], 0
	ret

/* rsi: NUL-terminated string to COM1. */
puts:
	mov dx, 0x3f8
1:	lodsb
	test al, al
	jz 2f
	out dx, al
	jmp 1b
2:	ret

isr_power:
	lea rsi, [rip + msg_power]
	call puts
	mov dx, 0x604
	mov ax, 0x3400		/* SLP_TYP 5 (our \_S5), SLP_EN */
	out dx, ax
3:	cli
	hlt
	jmp 3b

isr_serial:
	push rax
	push rdx
4:	mov dx, 0x3fd		/* LSR */
	in al, dx
	test al, 1		/* data ready */
	jz 5f
	mov dx, 0x3f8
	in al, dx
	cmp al, 'a'
	jb 6f
	cmp al, 'z'
	ja 6f
	sub al, 0x20
6:	out dx, al
	jmp 4b
5:	mov edx, 0xfee000b0
	mov dword ptr [rdx], 0	/* EOI */
	pop rdx
	pop rax
	iretq

msg_ready:
	.asciz "TINY-GUEST: ready\n"
msg_power:
	.asciz "TINY-GUEST: power button\n"

	.balign 8
idtr:
	.word 0x32 * 16 - 1
idtr_base:
	.quad 0
	.balign 16
idt:
	.fill 0x32 * 16, 1, 0
