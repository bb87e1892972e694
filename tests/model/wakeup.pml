/*
 * wakeup.pml - the parked-consumer handshake of rf_ring_wait() /
 * rf_ring_wake_consumer(), under x86-TSO (each CPU has a store buffer that
 * drains at any time; a full fence waits until it is empty; xchg and the futex
 * syscall drain it too).
 *
 *   spin -a wakeup.pml            fenced protocol: no invalid end state
 *   spin -a -DNOFENCE_P ...       producer's fence removed: spin finds the
 *   spin -a -DNOFENCE_C ...       lost wakeup (consumer asleep, record
 *                                 committed); likewise the consumer's
 *
 * tests/model/check.sh runs both and requires exactly those outcomes, so the
 * check itself is shown able to catch the bug.
 */
bit committed = 0;  /* memory: len > 0 at head (record committed) */
bit parked = 0;   /* memory: consumer's futex word */
bit woken = 0;    /* a FUTEX_WAKE was delivered (the kernel queues it) */

bit p_pend = 0;   /* producer's store buffer holds "committed = 1" */
bit c_pend = 0;   /* consumer's store buffer holds "parked = 1" */

#ifdef NOFENCE_P
#define P_FENCE skip
#else
#define P_FENCE (p_pend == 0)
#endif
#ifdef NOFENCE_C
#define C_FENCE skip
#else
#define C_FENCE (c_pend == 0)
#endif

active proctype drain_p()
{
end:	do
	:: atomic { p_pend == 1 -> committed = 1; p_pend = 0 }
	od
}

active proctype drain_c()
{
end:	do
	:: atomic { c_pend == 1 -> parked = 1; c_pend = 0 }
	od
}

active proctype producer()
{
	p_pend = 1;			/* release store of committed (commit) */
	P_FENCE;			/* atomic_thread_fence(seq_cst) */
	if
	:: parked == 1 ->		/* load of parked */
		atomic { p_pend == 0; parked = 0; woken = 1 }	/* xchg + FUTEX_WAKE */
	:: else -> skip
	fi
}

active proctype consumer()
{
	c_pend = 1;			/* store parked = 1 */
	C_FENCE;			/* atomic_thread_fence(seq_cst) */
	if
	:: committed == 1 -> skip		/* head_ready(): record seen, no sleep */
	:: else ->
		c_pend == 0;		/* the futex syscall drains the buffer */
		if
		:: atomic { parked == 1 -> skip }; woken == 1	/* FUTEX_WAIT sleeps */
		:: atomic { parked != 1 -> skip }		/* value changed: EAGAIN */
		fi;
		assert(committed == 1)	/* woken with the record visible */
	fi
}
