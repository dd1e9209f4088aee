/* SPDX-License-Identifier: MIT */
/*
 * bench/ioguest/io.S - a tiny guest for bench/sandbox.sh, wrapped as a
 * bzImage by tests/e2e/mktinyguest.sh (direct boot, 64-bit entry): it
 * writes EXITS bytes to COM1's scratch register (one port-I/O exit each:
 * the cost of a round trip through KVM_RUN and the bus), then reads
 * SECTORS sectors from the IDE primary master by polled PIO, 16 per READ
 * SECTORS command (the block layer's worker threads, the IDE model and
 * the status polls' exits), then powers off through PM1_CNT.  A bad
 * status prints "IO-GUEST: error" first.  EXITS and SECTORS (a multiple
 * of 16; at most the disk's size) are assembler defines.
 */
#ifndef EXITS
#define EXITS 0
#endif
#ifndef SECTORS
#define SECTORS 0
#endif
	.intel_syntax noprefix
	.text
	.code64
	.globl _start
_start:
	cli
	mov al, 0xff		/* both 8259s masked */
	out 0x21, al
	out 0xa1, al
	lea rsi, [rip + msg_start]
	call puts

	mov ecx, EXITS
	mov dx, 0x3ff		/* COM1 scratch register */
	test ecx, ecx
	jz 2f
1:	out dx, al
	dec ecx
	jnz 1b
2:
	mov r8d, SECTORS / 16	/* commands to go */
	xor ebx, ebx		/* LBA */
	test r8d, r8d
	jz done
	mov dx, 0x3f6		/* device control: nIEN, we poll */
	mov al, 0x02
	out dx, al
command:
	mov dx, 0x1f7
3:	in al, dx
	test al, 0x80		/* BSY */
	jnz 3b
	mov dx, 0x1f6		/* master, LBA, bits 24-27 */
	mov eax, ebx
	shr eax, 24
	and al, 0x0f
	or al, 0xe0
	out dx, al
	mov dx, 0x1f2		/* count */
	mov al, 16
	out dx, al
	mov eax, ebx
	mov dx, 0x1f3
	out dx, al
	shr eax, 8
	mov dx, 0x1f4
	out dx, al
	shr eax, 8
	mov dx, 0x1f5
	out dx, al
	mov dx, 0x1f7
	mov al, 0x20		/* READ SECTORS */
	out dx, al
	mov r9d, 16
sector:
	mov dx, 0x1f7
4:	in al, dx
	test al, 0x80
	jnz 4b
	test al, 0x01		/* ERR */
	jnz error
	test al, 0x08		/* DRQ */
	jz 4b
	lea rdi, [rip + buf]
	mov dx, 0x1f0
	mov ecx, 256
	rep insw
	dec r9d
	jnz sector
	add ebx, 16
	dec r8d
	jnz command
done:
	lea rsi, [rip + msg_done]
	call puts
poweroff:
	mov dx, 0x604
	mov ax, 0x3400		/* SLP_TYP 5 (our \_S5), SLP_EN */
	out dx, ax
5:	hlt
	jmp 5b
error:
	lea rsi, [rip + msg_error]
	call puts
	jmp poweroff

/* rsi: NUL-terminated string to COM1. */
puts:
	mov dx, 0x3f8
6:	lodsb
	test al, al
	jz 7f
	out dx, al
	jmp 6b
7:	ret

msg_start:
	.asciz "IO-GUEST: start\n"
msg_done:
	.asciz "IO-GUEST: done\n"
msg_error:
	.asciz "IO-GUEST: error\n"
	.balign 16
buf:
	.fill 512, 1, 0
