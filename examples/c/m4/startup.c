/*
 * Start-up code of the Cortex-M4F example for QEMU's mps2-an386: the vector
 * table, a reset handler that prepares memory and the FPU before calling
 * main, and a fault handler that ends QEMU with a non-zero exit status
 * instead of spinning forever.
 */
#include <stdint.h>
#include <stdlib.h>

extern int main(void);
extern void initialise_monitor_handles(void);

extern uint32_t __stack_top;
extern uint32_t __data_start, __data_end, __data_load;
extern uint32_t __bss_start__, __bss_end__;

void reset_handler(void);
void fault_handler(void);

/* Address of the Coprocessor Access Control Register. */
#define CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Semihosting SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown: QEMU exits
   with status 1. */
#define SYS_EXIT 0x18u
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023u

__attribute__((noreturn)) void fault_handler(void) {
    register uint32_t op __asm__("r0") = SYS_EXIT;
    register uint32_t reason __asm__("r1") = ADP_STOPPED_RUN_TIME_ERROR;
    __asm__ volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
    for (;;) {
    }
}

/* Initial stack pointer, then the reset handler and the fault handlers
   (NMI, HardFault, MemManage, BusFault, UsageFault). Stored as integers
   because ISO C has no conversion between object and function pointers. */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[] = {
    (uintptr_t)&__stack_top,
    (uintptr_t)reset_handler,
    (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
    (uintptr_t)fault_handler,
};

/* newlib's exit() runs __libc_fini_array, which calls _fini; crti.o would
   define it, but -nostartfiles leaves it out. Nothing here needs it. */
void _init(void);
void _fini(void);
void _init(void) {}
void _fini(void) {}

__attribute__((noreturn)) void reset_handler(void) {
    uint32_t *src = &__data_load;
    for (uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }

    /* Full access to CP10 and CP11 (the FPU) before the first float
       instruction; the library uses VFMA.F32 and VSQRT.F32. */
    CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    initialise_monitor_handles();
    exit(main());
}
