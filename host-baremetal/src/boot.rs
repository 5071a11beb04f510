//! From the PVH entry point to Rust: QEMU's `-kernel` loads this ELF at its
//! link address (1 MiB) and, seeing the `XEN_ELFNOTE_PHYS32_ENTRY` note,
//! jumps to `pvh_start` in 32-bit protected mode, paging off, with the
//! physical address of `hvm_start_info` in `ebx`.
//!
//! The stub zeroes `.bss`, identity-maps the first 4 GiB with 2 MiB pages
//! (RAM, the PCIe ECAM at 0xB000_0000, virtio-mmio and the LAPIC all live
//! there), enables PAE, SSE (OSFXSR/OSXMMEXCPT: wasm code uses SSE even
//! though the kernel is soft-float) and long mode, and calls `kmain` on a
//! 4 MiB stack. Pages are writable and executable: wasmtime's code memory is
//! published by doing nothing (`platform::IdentityCode`).

core::arch::global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 4
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %esi

    /* zero .bss (page tables included) */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    /* PML4[0] -> PDPT; PDPT[0..4] -> PD[0..4]; PD: 2048 x 2 MiB */
    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt(,%ecx,8)
    inc %ecx
    cmp $4, %ecx
    jne 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    /* CR4: PAE | OSFXSR | OSXMMEXCPT */
    mov %cr4, %eax
    or $0x620, %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    /* EFER.LME */
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    /* CR0: PG | MP, clear EM and TS */
    mov %cr0, %eax
    or $0x80000002, %eax
    and $0xFFFFFFF3, %eax
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    movabs $boot_stack_top, %rsp
    fninit
    mov %esi, %edi
    call kmain
3:  hlt
    jmp 3b

    .section .rodata.boot, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4

    .section .stack, "aw", @nobits
    .balign 4096
    .skip 4 * 1024 * 1024
boot_stack_top:
    .code64
    .section .text
"#,
    options(att_syntax)
);
