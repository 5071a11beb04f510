//! x86_64 bits: port I/O, cpuid, the IDT (exceptions end the run with a
//! message; IRQ 0 drives the clock and wasmtime's epoch; device interrupts
//! only wake `hlt`), the 8259 PIC, the second IOAPIC (microvm's virtio-mmio
//! lines), the PIT, and `isa-debug-exit`.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

pub fn outb(port: u16, v: u8) {
    // SAFETY: port I/O to devices this kernel owns.
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as `outb`.
    unsafe { asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn outl(port: u16, v: u32) {
    // SAFETY: as `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags)) }
}

pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: as `outb`.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack, preserves_flags)) }
    v
}

pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `Config::detect_host_feature` for the kernel: which x86 features this
/// CPU has (bundles are compiled for sse3..sse4.2; AVX would need XSAVE
/// state the kernel does not enable, so it is reported absent).
pub fn has_feature(name: &str) -> Option<bool> {
    let (_, _, ecx1, _) = cpuid(1, 0);
    let (_, ebx7, _, _) = cpuid(7, 0);
    let (_, _, ecx81, _) = cpuid(0x8000_0001, 0);
    let bit = |r: u32, b: u32| Some(r & (1 << b) != 0);
    match name {
        "sse3" => bit(ecx1, 0),
        "ssse3" => bit(ecx1, 9),
        "sse4.1" => bit(ecx1, 19),
        "sse4.2" => bit(ecx1, 20),
        "popcnt" => bit(ecx1, 23),
        "cmpxchg16b" => bit(ecx1, 13),
        "bmi1" => bit(ebx7, 3),
        "bmi2" => bit(ebx7, 8),
        "lzcnt" => bit(ecx81, 5),
        "avx" | "avx2" | "fma" | "avxvnni" | "avx512bitalg" | "avx512dq" | "avx512f" | "avx512vl"
        | "avx512vbmi" | "avx512vnni" => Some(false),
        _ => None,
    }
}

/// QEMU's `isa-debug-exit` at 0xf4: QEMU exits with status `(v << 1) | 1`.
/// The exit code travels in the serial stream (`serial::exit_frame`); this
/// only stops the machine.
pub fn qemu_exit(v: u8) -> ! {
    outl(0xf4, u32::from(v));
    // Not under QEMU (or no isa-debug-exit): stop here.
    loop {
        // SAFETY: halting with interrupts off ends execution.
        unsafe { asm!("cli; hlt") }
    }
}

/// Timer interrupts since boot (1 kHz).
pub static TICKS: AtomicU64 = AtomicU64::new(0);
pub const TICK_HZ: u32 = 1000;

#[repr(C, packed)]
struct IdtPtr {
    limit: u16,
    base: u64,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    lo: u64,
    hi: u64,
}

static mut IDT: [Gate; 256] = [Gate { lo: 0, hi: 0 }; 256];

unsafe extern "C" {
    static exception_stubs: [u64; 32];
    fn irq_timer();
    fn irq_other_master();
    fn irq_other_slave();
    fn irq_spurious();
    fn irq_ioapic();
}

/// The vector IOAPIC-routed device interrupts use.
pub const IOAPIC_VECTOR: u8 = 0x50;

fn gate(handler: u64) -> Gate {
    // Present, DPL 0, 64-bit interrupt gate, selector 0x08.
    let lo = (handler & 0xFFFF) | (0x08 << 16) | (0x8E00u64 << 32) | ((handler >> 16) & 0xFFFF) << 48;
    Gate { lo, hi: handler >> 32 }
}

/// Installs the IDT, remaps the PIC to vectors 32..48 (only IRQ 0, the
/// PIT, unmasked) and enables interrupts.
pub fn init_interrupts() {
    // SAFETY: single-threaded boot; the IDT is static and lives forever.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (v, g) in idt.iter_mut().enumerate().take(32) {
            *g = gate(exception_stubs[v]);
        }
        idt[32] = gate(irq_timer as *const () as u64);
        for v in 33..40 {
            idt[v] = gate(irq_other_master as *const () as u64);
        }
        for v in 40..48 {
            idt[v] = gate(irq_other_slave as *const () as u64);
        }
        for g in &mut idt[48..] {
            *g = gate(irq_spurious as *const () as u64);
        }
        idt[IOAPIC_VECTOR as usize] = gate(irq_ioapic as *const () as u64);
        let ptr = IdtPtr { limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16, base: idt.as_ptr() as u64 };
        asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack));
    }
    // 8259: ICW1..4, master at 32, slave at 40, cascade on IRQ 2.
    for (port, v) in [(0x20, 0x11), (0xA0, 0x11), (0x21, 32), (0xA1, 40), (0x21, 4), (0xA1, 2), (0x21, 1), (0xA1, 1)] {
        outb(port, v);
    }
    outb(0x21, 0xFE);
    outb(0xA1, 0xFF);
    // The local APIC in virtual-wire mode: the PIC's INTR reaches the CPU
    // through LINT0 as ExtINT. SeaBIOS does this on q35; qboot (microvm,
    // and q35 under `weft boot`) does not, and without it no timer
    // interrupt ever arrives.
    const LAPIC: usize = 0xFEE0_0000;
    for (reg, v) in [(0xF0, 0x1FFu32), (0x350, 0x700), (0x360, 0x400)] {
        // SAFETY: the LAPIC's MMIO page is identity-mapped.
        unsafe { core::ptr::write_volatile((LAPIC + reg) as *mut u32, v) }
    }
    // SAFETY: the IDT is in place.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

/// Sleeps until the next interrupt. With interrupts disabled before (see
/// `cli`), one that became pending meanwhile still ends the `hlt`: `sti`
/// takes effect after the next instruction.
pub fn halt() {
    // SAFETY: interrupts are enabled, so `hlt` returns at the next tick.
    unsafe { asm!("sti; hlt", options(nomem, nostack)) }
}

/// Disables interrupts (until `halt` or `sti`).
pub fn cli() {
    // SAFETY: only delays interrupts; every caller re-enables them.
    unsafe { asm!("cli", options(nomem, nostack)) }
}

pub fn sti() {
    // SAFETY: the IDT is in place.
    unsafe { asm!("sti", options(nomem, nostack)) }
}

/// Unmasks one 8259 line (a device's INTx). Its handler masks it again
/// (`irq_eoi`): the line is level-triggered and stays asserted until the
/// driver acknowledges the device, which happens outside the handler.
pub fn pic_unmask(line: u8) {
    let (port, bit) = if line < 8 { (0x21, line) } else { (0xA1, line - 8) };
    outb(port, inb(port) & !(1 << bit));
    if line >= 8 {
        outb(0x21, inb(0x21) & !(1 << 2)); // the cascade
    }
}

const IOAPIC2: usize = 0xFEC1_0000;

fn ioapic2_read(reg: u32) -> u32 {
    // SAFETY: the IOAPIC's MMIO page is identity-mapped; select, then read.
    unsafe {
        core::ptr::write_volatile(IOAPIC2 as *mut u32, reg);
        core::ptr::read_volatile((IOAPIC2 + 0x10) as *const u32)
    }
}

fn ioapic2_write(reg: u32, v: u32) {
    // SAFETY: as `ioapic2_read`.
    unsafe {
        core::ptr::write_volatile(IOAPIC2 as *mut u32, reg);
        core::ptr::write_volatile((IOAPIC2 + 0x10) as *mut u32, v);
    }
}

/// Whether the second IOAPIC (0xFEC1_0000, GSI 24..48; microvm with ACPI)
/// answers: its version register reads as neither 0 nor all ones.
pub fn ioapic2_present() -> bool {
    let v = ioapic2_read(1);
    v != 0 && v != u32::MAX
}

/// IOAPIC pins whose interrupt `irq_ioapic` masks (one bit per pin).
static IOAPIC2_PINS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

const MASKED: u32 = 1 << 16;

/// Routes pin `pin` of the second IOAPIC to `IOAPIC_VECTOR` on this CPU
/// (level-triggered, active high, as virtio-mmio's line), masked until
/// `ioapic2_unmask`.
pub fn ioapic2_route(pin: u8) {
    IOAPIC2_PINS.fetch_or(1 << pin, Ordering::Relaxed);
    ioapic2_write(0x11 + 2 * u32::from(pin), 0); // destination: APIC ID 0
    ioapic2_write(0x10 + 2 * u32::from(pin), u32::from(IOAPIC_VECTOR) | (1 << 15) | MASKED);
}

pub fn ioapic2_unmask(pin: u8) {
    ioapic2_write(0x10 + 2 * u32::from(pin), u32::from(IOAPIC_VECTOR) | (1 << 15));
}

/// The IOAPIC interrupt: mask every routed pin (the driver acknowledges the
/// device and unmasks it before it next sleeps), then EOI the local APIC.
#[unsafe(no_mangle)]
extern "C" fn ioapic_irq() {
    let pins = IOAPIC2_PINS.load(Ordering::Relaxed);
    for pin in 0..32u32 {
        if pins & (1 << pin) != 0 {
            ioapic2_write(0x10 + 2 * pin, u32::from(IOAPIC_VECTOR) | (1 << 15) | MASKED);
        }
    }
    // SAFETY: the LAPIC's EOI register, identity-mapped.
    unsafe { core::ptr::write_volatile(0xFEE0_00B0 as *mut u32, 0) }
}

#[unsafe(no_mangle)]
extern "C" fn timer_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    crate::on_tick();
    outb(0x20, 0x20);
}

/// Any 8259 line but the timer: mask the line in service (a level-triggered
/// device line would fire again right after the EOI; the driver unmasks it
/// once it has acknowledged the device), then EOI.
#[unsafe(no_mangle)]
extern "C" fn irq_eoi(slave: u64) {
    let (cmd, data) = if slave != 0 { (0xA0, 0xA1) } else { (0x20, 0x21) };
    outb(cmd, 0x0B); // OCW3: read the in-service register
    let isr = inb(cmd);
    outb(cmd, 0x0A); // back to the request register
    // The cascade line (2) on the master stays open for the slave.
    let isr = if slave == 0 { isr & !(1 << 2) } else { isr };
    outb(data, inb(data) | isr);
    if slave != 0 {
        outb(0xA0, 0x20);
    }
    outb(0x20, 0x20);
}

#[unsafe(no_mangle)]
extern "C" fn exception(vector: u64, error: u64, rip: u64) -> ! {
    const NAMES: [&str; 21] = [
        "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range", "invalid opcode",
        "device not available", "double fault", "coprocessor overrun", "invalid TSS", "segment not present",
        "stack fault", "general protection fault", "page fault", "reserved", "x87 floating point",
        "alignment check", "machine check", "SIMD floating point", "virtualization",
    ];
    let name = NAMES.get(vector as usize).copied().unwrap_or("exception");
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) }
    crate::fatal(format_args!("CPU exception {vector} ({name}) at rip {rip:#x}, error code {error:#x}, cr2 {cr2:#x}"))
}

// Interrupt entry stubs. The kernel is soft-float, so Rust code called from
// here never touches the SSE registers wasm code may be using; only the
// caller-saved general registers need saving. On entry the CPU has aligned
// the stack to 16 and pushed 5 words; 9 more pushes keep the call aligned.
global_asm!(
    r#"
    .macro SAVE
    push rax
    push rcx
    push rdx
    push rsi
    push rdi
    push r8
    push r9
    push r10
    push r11
    .endm
    .macro RESTORE
    pop r11
    pop r10
    pop r9
    pop r8
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rax
    .endm

    .global irq_timer
irq_timer:
    SAVE
    cld
    call timer_tick
    RESTORE
    iretq

    .global irq_spurious
irq_spurious:
    iretq

    .global irq_ioapic
irq_ioapic:
    SAVE
    cld
    call ioapic_irq
    RESTORE
    iretq

    .global irq_other_master
irq_other_master:
    SAVE
    xor edi, edi
    call irq_eoi
    RESTORE
    iretq

    .global irq_other_slave
irq_other_slave:
    SAVE
    mov edi, 1
    call irq_eoi
    RESTORE
    iretq

    .macro EXC n, err
exc_\n:
    .if \err == 0
    push 0
    .endif
    mov rdi, \n
    mov rsi, [rsp]
    mov rdx, [rsp + 8]
    and rsp, -16
    call exception
    .endm

    .irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    EXC \n, 0
    .endr
    .irp n, 8,10,11,12,13,14,17,21,29,30
    EXC \n, 1
    .endr

    .section .rodata
    .balign 8
    .global exception_stubs
exception_stubs:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exc_\n
    .endr
    .text
"#
);
