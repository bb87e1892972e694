/*
 * rf_arch.h - the one place the ring depends on the CPU.
 *
 * rf_cpu_relax(): the spin-wait hint, called in a loop that polls shared
 * memory another core is about to write.  x86's PAUSE lets the other
 * hyperthread run and avoids the memory-order mis-speculation penalty when
 * the awaited store lands; aarch64's YIELD is the same hint.  Elsewhere a
 * compiler barrier keeps the loop re-reading memory; the loop's caller
 * falls back to sched_yield() after a bounded number of spins either way.
 */
#ifndef RF_ARCH_H
#define RF_ARCH_H

static inline void rf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif
