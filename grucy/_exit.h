/* Interpreter exit while another thread is inside a grucy call.

   Python stops a daemon thread only when it next tries to take the GIL, so one inside a
   kernel or product (GIL released) keeps running after Py_Finalize, into exit(). exit()
   then runs the ELF destructors, OpenBLAS's among them (gotoblas_quit -> blas_shutdown),
   which unmap the buffers that thread's GEMM is packing into (sgemm_oncopy /
   sgemm_kernel on the caller or a pool worker: SIGSEGV), or join OpenBLAS's own idle
   threads while that GEMM runs (a hang). Both were seen, 1 run in 4 to 8, with the main
   thread under gotoblas_quit in the backtrace and the daemon's GEMM still running.

   So each module counts the calls in flight: grucy_call_enter() just before `with nogil:`
   (with the GIL held, nothing in between that could release it), grucy_call_leave() as
   the last statement inside it (a thread that reaches for the GIL after finalisation never
   returns from that). grucy_exit_wait, registered with atexit() at import, runs in exit()
   after Py_Finalize and before any ELF destructor (glibc runs atexit handlers first,
   _dl_fini last), and waits for the count to reach zero. No call can start meanwhile: a
   start needs the GIL, which after finalisation no thread but the exiting one takes (and
   the GIL orders the increment before the main thread's read). Cost on the hot path: two
   uncontended atomic adds per call. Exit waits for at most the calls already running.
   A fork()ed child has none running (only the forking thread, which holds the GIL, is
   copied), whatever the count it inherits: a pthread_atfork handler zeroes it, or a child
   forked while another thread was inside a call would wait at exit for ever. While it
   waits, SIGINT gets its default action back (Python's handler now only sets a flag that
   nothing reads), so Ctrl-C still ends a process stuck behind a long call. */
#ifndef GRUCY_EXIT_H
#define GRUCY_EXIT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static atomic_long grucy_calls_in_flight = 0;   /* per module: each one waits for its own */

static inline void grucy_call_enter(void) {
    atomic_fetch_add_explicit(&grucy_calls_in_flight, 1, memory_order_relaxed);
}

static inline void grucy_call_leave(void) {
    atomic_fetch_sub_explicit(&grucy_calls_in_flight, 1, memory_order_release);
}

static void grucy_exit_wait(void) {
    struct timespec nap = {0, 200000};          /* 0.2 ms */
    struct sigaction old;
    if (atomic_load_explicit(&grucy_calls_in_flight, memory_order_acquire) <= 0)
        return;
    /* Python's SIGINT handler outlives finalisation and only sets a flag no one reads now:
       let Ctrl-C end a wait for a long call (unless SIGINT is ignored) */
    if (sigaction(SIGINT, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO)
            && old.sa_handler != SIG_IGN)
        signal(SIGINT, SIG_DFL);
    while (atomic_load_explicit(&grucy_calls_in_flight, memory_order_acquire) > 0)
        nanosleep(&nap, NULL);
}

static void grucy_exit_after_fork_child(void) {
    atomic_store_explicit(&grucy_calls_in_flight, 0, memory_order_relaxed);
}

/* Call once per module, at import. Returns 0 on success. */
static inline int grucy_exit_guard(void) {
    if (pthread_atfork(NULL, NULL, grucy_exit_after_fork_child) != 0)
        return -1;
    return atexit(grucy_exit_wait);
}

#endif
