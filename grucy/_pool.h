/* grucy's thread pool: one set of worker threads for OpenBLAS's jobs and the gate passes.

   Why: with more than one thread, OpenBLAS splits each GEMM over its own workers, and a
   worker that finishes spins, without yielding, for about 0.1 s before it sleeps (its wait
   loop is `nop`s against a cycle counter). The gate passes between two GEMMs ran on the
   caller alone, and a thread of grucy's own for them would have fought that spinning
   worker for the same core. So grucy registers this pool as OpenBLAS's threading backend
   (scipy_openblas_set_threads_callback_function: OpenBLAS then hands each parallel call's
   jobs to grucy_pool_blas) and runs the gate passes' row blocks on the same workers.
   numpy's OpenBLAS (a second library, with a second set of spinning workers) can hand its
   jobs here too, on request: grucy.share_threads_with_numpy passes it a twin callback
   (grucy_pool_blas_shared, below: its jobs need other thread slots).

   grucy_pool_run(njobs, fn, arg) runs fn(i, arg) for i = 0..njobs-1, job 0 on the caller
   and job i on worker i, and returns when all are done. OpenBLAS's jobs wait for one
   another, so all must run at once, and a run needs njobs - 1 workers; they are started
   ahead (grucy_pool_reserve: at import and by grucy.set_num_threads, where a failure can
   raise) and live for the process. grucy's own jobs (gate passes, row-block steps) are
   independent: a caller done with job 0 runs any of them that no worker has started yet.
   On a busy machine a worker can be off its core for a scheduler time slice (milliseconds)
   when its job is posted: beside three spinning processes on this 2-core machine
   (benchmarks/ab.py --busy 3), 2-thread (100, 32, 8, 64) inference took a median of
   4.9 ms waiting for such workers (single rounds up to 50 times the time below; one
   thread: 2.4 ms), and 3.5 ms with the caller taking their jobs over. (A worker taken off
   its core in the middle of a job, or OpenBLAS's jobs, must still be waited for: there
   fewer threads than busy cores is the remedy.) Between runs a worker spins for
   GRUCY_POOL_SPIN pauses (a few hundred microseconds; the gap between two GEMMs of a
   kernel call is far shorter), then sleeps on a condition variable: unlike OpenBLAS's
   0.1 s, that gives the core back (to numpy's pool, say) soon after a call.

   One run at a time: callers on several threads queue on a mutex. A run started from inside
   a job (OpenBLAS splitting a GEMM that a job calls) cannot have the pool, whose workers are
   all in the outer run: its jobs run on threads started for it and joined (slow), and
   grucy_pool_nested() counts such runs (tests). grucy's own step jobs start none: they run
   as a serial run (grucy_pool_run_serial: OpenBLAS held at one thread), so that their GEMMs
   are not split. Such a split would also wait for OpenBLAS's level3_lock, which a threaded
   GEMM on another thread holds while its callback waits for the pool: OpenBLAS's callback
   (grucy_pool_blas) therefore waits at most 5 ms while a run whose jobs call BLAS has the
   pool, then runs nested (grucy_pool_use_for_blas). After fork() the child starts with no workers
   (pthread_atfork). If a needed worker still cannot be
   started inside a run, the jobs run one after another on the caller: right for the gate
   passes; OpenBLAS's jobs would stall waiting for each other, which needs pthread_create
   to fail after grucy_pool_reserve succeeded for the same thread count. */
#ifndef GRUCY_POOL_H
#define GRUCY_POOL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GRUCY_POOL_MAX 256         /* workers (OpenBLAS runs at most its NUM_THREADS jobs) */
#define GRUCY_POOL_SPIN 20000      /* pauses before an idle worker sleeps, or a waiting
                                      caller starts to yield its core */
#define GRUCY_POOL_TAKE 256        /* pauses a caller done with job 0 waits before it runs
                                      the open jobs no worker has started */

typedef void (*grucy_job_fn)(int i, void *arg);

/* Worker i's mailbox: the caller writes fn and arg, then bumps gen (release); the worker,
   seeing gen change (acquire), runs fn(i, arg). The caller writes a mailbox again only
   after its worker has reported the job done, so a worker never reads a half-written one,
   and a run touches only the workers it needs. One cache line each. */
typedef struct {
    atomic_ulong gen;
    grucy_job_fn fn;
    void *arg;
    unsigned long start;       /* gen when the worker was started: the jobs it must run
                                  are the bumps after it (read by the new thread itself,
                                  gen could already hold a bump it has to act on) */
    atomic_int posted;         /* the job not yet taken: GRUCY_JOB_OPEN (the caller may take
                                  it over), GRUCY_JOB_HERE (it must run here), or 0; whoever
                                  swaps it to 0 runs the job, so it runs once */
    char pad[64 - sizeof(atomic_ulong) - sizeof(grucy_job_fn) - sizeof(void *)
             - sizeof(unsigned long) - sizeof(atomic_int)];
} grucy_mailbox;

enum { GRUCY_JOB_OPEN = 1, GRUCY_JOB_HERE = 2 };

static struct {
    pthread_mutex_t use;           /* held by the caller of a run, start to end */
    pthread_mutex_t lock;          /* guards `sleeping` and the condition variable */
    pthread_mutex_t count;         /* guards grucy_pool_planned with OpenBLAS's count */
    pthread_cond_t wake;
    int workers;                   /* started so far: workers 1..workers */
    int sleeping;
    atomic_int pending;            /* jobs of the current run not yet done on workers */
    atomic_ulong runs;             /* parallel runs so far (tests: whose jobs came here) */
    atomic_ulong nested;           /* of those, runs started from inside a job */
    atomic_ulong serial;           /* serial runs so far (tests: row-block steps) */
    atomic_ulong taken;            /* jobs a caller ran in place of their worker (tests) */
    atomic_int hold;               /* tests: workers leave open jobs to their caller */
    atomic_int gemm_runs;          /* runs whose jobs call grucy's OpenBLAS, from before they
                                      wait for `use` until they release it */
    grucy_mailbox box[GRUCY_POOL_MAX + 1];
} grucy_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static inline void grucy_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* 1 on a thread while it runs a job of a run (the caller's job 0 included). */
static _Thread_local int grucy_in_job = 0;

static void *grucy_pool_worker(void *p) {
    int me = (int)(intptr_t)p;
    grucy_mailbox *box = &grucy_pool.box[me];
    unsigned long seen = box->start;
    for (;;) {
        long spins = 0;
        while (atomic_load_explicit(&box->gen, memory_order_acquire) == seen) {
            if (++spins < GRUCY_POOL_SPIN) {
                grucy_pause();
                continue;
            }
            pthread_mutex_lock(&grucy_pool.lock);
            grucy_pool.sleeping++;
            while (atomic_load_explicit(&box->gen, memory_order_acquire) == seen)
                pthread_cond_wait(&grucy_pool.wake, &grucy_pool.lock);
            grucy_pool.sleeping--;
            pthread_mutex_unlock(&grucy_pool.lock);
            break;
        }
        seen++;                    /* one bump per job posted */
        while (atomic_load_explicit(&grucy_pool.hold, memory_order_relaxed)
               && atomic_load_explicit(&box->posted, memory_order_relaxed) == GRUCY_JOB_OPEN)
            grucy_pause();
        /* 0: the caller ran this job itself, or this worker ran it on an earlier bump it
           saw late; the caller waits only for the jobs workers took */
        if (!atomic_exchange_explicit(&box->posted, 0, memory_order_acq_rel))
            continue;
        grucy_in_job = 1;
        box->fn(me, box->arg);
        grucy_in_job = 0;
        atomic_fetch_sub_explicit(&grucy_pool.pending, 1, memory_order_release);
    }
    return NULL;
}

/* Start workers up to n (with `use` held). Returns how many there are. */
static int grucy_pool_grow(int n) {
    if (n > GRUCY_POOL_MAX)
        n = GRUCY_POOL_MAX;
    while (grucy_pool.workers < n) {
        int me = grucy_pool.workers + 1;
        grucy_pool.box[me].start = atomic_load_explicit(&grucy_pool.box[me].gen,
                                                        memory_order_relaxed);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&t, &attr, grucy_pool_worker, (void *)(intptr_t)me);
        pthread_attr_destroy(&attr);
        if (err)
            break;
        grucy_pool.workers = me;
    }
    return grucy_pool.workers;
}

/* A run from inside a job: jobs 1.. on threads of their own, job 0 here, then join. */
typedef struct { grucy_job_fn fn; void *arg; int i; } grucy_temp_job;

static void *grucy_temp_main(void *p) {
    const grucy_temp_job *j = (const grucy_temp_job *)p;
    grucy_in_job = 1;
    j->fn(j->i, j->arg);
    return NULL;
}

static int grucy_pool_run_nested(int njobs, grucy_job_fn fn, void *arg) {
    pthread_t t[GRUCY_POOL_MAX];
    grucy_temp_job jobs[GRUCY_POOL_MAX];
    int started = 1, most = njobs < GRUCY_POOL_MAX ? njobs : GRUCY_POOL_MAX, i;
    atomic_fetch_add_explicit(&grucy_pool.nested, 1, memory_order_relaxed);
    for (; started < most; started++) {
        jobs[started] = (grucy_temp_job){fn, arg, started};
        if (pthread_create(&t[started], NULL, grucy_temp_main, &jobs[started]))
            break;
    }
    fn(0, arg);
    for (i = 1; i < started; i++)
        pthread_join(t[i], NULL);
    for (i = started; i < njobs; i++)          /* no thread for these: in turn */
        fn(i, arg);
    return started < njobs ? -1 : 0;
}

/* The body of a run of njobs >= 2 jobs, with `use` held by the caller. `open`: the jobs are
   independent, and the caller takes over those no worker has started (see the top). */
static inline int grucy_pool_run_held(int njobs, grucy_job_fn fn, void *arg, int open) {
    if (grucy_pool_grow(njobs - 1) < njobs - 1) {
        grucy_in_job = 1;          /* a run these jobs start is nested: `use` is held here */
        for (int i = 0; i < njobs; i++)
            fn(i, arg);
        grucy_in_job = 0;
        return -1;
    }
    atomic_store_explicit(&grucy_pool.pending, njobs - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&grucy_pool.runs, 1, memory_order_relaxed);
    for (int i = 1; i < njobs; i++) {
        grucy_pool.box[i].fn = fn;
        grucy_pool.box[i].arg = arg;
        atomic_store_explicit(&grucy_pool.box[i].posted, open ? GRUCY_JOB_OPEN : GRUCY_JOB_HERE,
                              memory_order_release);
        atomic_fetch_add_explicit(&grucy_pool.box[i].gen, 1, memory_order_release);
    }
    pthread_mutex_lock(&grucy_pool.lock);       /* a worker between spinning and sleeping */
    if (grucy_pool.sleeping)                    /* holds this lock: it sees the new gen */
        pthread_cond_broadcast(&grucy_pool.wake);
    pthread_mutex_unlock(&grucy_pool.lock);
    grucy_in_job = 1;
    fn(0, arg);
    /* Wait for the workers' jobs: spin, then give the core up in turns (a worker waiting
       for this core runs). Open jobs that no worker has started after GRUCY_POOL_TAKE
       pauses run here. Not sooner: on an idle machine the workers' jobs end about when
       job 0 does, and looking at their mailboxes would move cache lines between cores on
       every run. */
    for (long spins = 0; atomic_load_explicit(&grucy_pool.pending, memory_order_acquire) > 0;) {
        if (open && spins == GRUCY_POOL_TAKE) {
            for (int i = 1; i < njobs; i++) {
                int expected = GRUCY_JOB_OPEN;
                if (atomic_load_explicit(&grucy_pool.box[i].posted, memory_order_relaxed)
                        == GRUCY_JOB_OPEN
                    && atomic_compare_exchange_strong_explicit(&grucy_pool.box[i].posted,
                            &expected, 0, memory_order_acq_rel, memory_order_relaxed)) {
                    fn(i, arg);
                    atomic_fetch_add_explicit(&grucy_pool.taken, 1, memory_order_relaxed);
                    atomic_fetch_sub_explicit(&grucy_pool.pending, 1, memory_order_release);
                }
            }
        }
        if (++spins < GRUCY_POOL_SPIN)
            grucy_pause();
        else
            sched_yield();
    }
    grucy_in_job = 0;
    return 0;
}

/* Run fn(i, arg) for i in [0, njobs) at once (see the top). Returns 0, or -1 when workers
   could not be started and the jobs ran one after another on the caller. */
static inline int grucy_pool_run_jobs(int njobs, grucy_job_fn fn, void *arg, int open) {
    if (njobs <= 1) {
        if (njobs == 1)
            fn(0, arg);
        return 0;
    }
    if (grucy_in_job)
        return grucy_pool_run_nested(njobs, fn, arg);
    pthread_mutex_lock(&grucy_pool.use);
    int r = grucy_pool_run_held(njobs, fn, arg, open);
    pthread_mutex_unlock(&grucy_pool.use);
    return r;
}

/* Independent jobs (grucy's own): a job no worker has started runs on the caller. */
static inline int grucy_pool_run(int njobs, grucy_job_fn fn, void *arg) {
    return grucy_pool_run_jobs(njobs, fn, arg, 1);
}

/* OpenBLAS's thread count, through the two functions grucy_pool_init is given (grucy names
   its BLAS in grucy/_blas.pxd alone). */
static int (*grucy_blas_get_threads)(void) = NULL;
static void (*grucy_blas_set_threads)(int) = NULL;

/* While a serial run holds OpenBLAS at one thread: the count it had, else 0. It changes
   together with OpenBLAS's count under grucy_pool.count, so a reader never sees one
   changed and the other not. */
static int grucy_pool_planned = 0;

/* A run whose jobs' GEMMs stay on their jobs' threads: OpenBLAS is held at one thread for
   the run's length (it splits a GEMM by its global count alone; a split inside a job would
   get threads of its own, slowly: grucy_pool_run_nested). Row-block steps use this
   (grucy/_gru.pyx, step_blocks). `use` is held throughout, so no other run, and no
   grucy_pool_set_threads, sees the count at one; a GEMM another thread starts meanwhile
   runs on its own thread, and grucy_pool_threads still reports the planned count, so that
   thread plans its splits as it would alone.
   The count is OpenBLAS's global one, so others see it at one meanwhile: threadpoolctl, or
   anything else that reads or sets grucy's OpenBLAS from another thread while a grucy call
   runs. The run restores its count only if it still reads one, so a change to another count
   made meanwhile stands; a change to one, or threadpoolctl saving one and restoring it, is
   lost or leaves one (README, "Kernels": set grucy's threads with grucy.set_num_threads). */
static inline int grucy_pool_run_serial(int njobs, grucy_job_fn fn, void *arg) {
    if (njobs <= 1 || grucy_in_job)
        return grucy_pool_run(njobs, fn, arg);
    atomic_fetch_add_explicit(&grucy_pool.serial, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&grucy_pool.gemm_runs, 1, memory_order_seq_cst);
    pthread_mutex_lock(&grucy_pool.use);
    pthread_mutex_lock(&grucy_pool.count);
    int n = grucy_blas_get_threads();
    grucy_pool_planned = n;
    grucy_blas_set_threads(1);
    pthread_mutex_unlock(&grucy_pool.count);
    int r = grucy_pool_run_held(njobs, fn, arg, 1);
    pthread_mutex_lock(&grucy_pool.count);
    if (grucy_blas_get_threads() == 1)
        grucy_blas_set_threads(n);
    grucy_pool_planned = 0;
    pthread_mutex_unlock(&grucy_pool.count);
    pthread_mutex_unlock(&grucy_pool.use);
    atomic_fetch_sub_explicit(&grucy_pool.gemm_runs, 1, memory_order_seq_cst);
    return r;
}

/* A run whose jobs call grucy's OpenBLAS with its count as it is (a test's nested run). */
static inline int grucy_pool_run_gemms(int njobs, grucy_job_fn fn, void *arg) {
    atomic_fetch_add_explicit(&grucy_pool.gemm_runs, 1, memory_order_seq_cst);
    int r = grucy_pool_run(njobs, fn, arg);
    atomic_fetch_sub_explicit(&grucy_pool.gemm_runs, 1, memory_order_seq_cst);
    return r;
}

/* Take `use` for a run OpenBLAS asks for, or return 0 where waiting could deadlock.
   OpenBLAS holds its level3_lock across a threaded GEMM, callback included, and a job of a
   run that calls BLAS waits for that lock if its own GEMM splits: it does when OpenBLAS's
   count was raised from outside during a serial run (threadpoolctl leaving a limit on
   another thread). Waiting for `use` then deadlocked (reproduced). So the caller waits in
   slices of 0.2 ms, and after 25 of them (5 ms) while such a run holds or awaits `use`, it
   gets 0 and runs its jobs nested instead. Not sooner: a serial run is one step, tens of
   microseconds, but a thread stepping in a loop takes `use` again and again, and nested
   jobs pay for threads of their own. Beside a loop of row-block steps, 400 split products
   on a second thread went nested 0 times at 5 ms, 22-59 times at 1 ms, and 40-106 times
   without waiting, which took 1.2-1.4x the old time for both threads' work. The slices
   are on CLOCK_REALTIME, as POSIX's timed lock is: a clock set back lengthens one. */
static inline int grucy_pool_use_for_blas(void) {
    for (int slices = 0;; slices++) {      /* each one timed out: 0.2 ms or more went by */
        if (slices >= 25 && atomic_load_explicit(&grucy_pool.gemm_runs, memory_order_seq_cst) > 0)
            return 0;
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 200000;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec += 1;
            t.tv_nsec -= 1000000000L;
        }
        if (pthread_mutex_timedlock(&grucy_pool.use, &t) == 0)
            return 1;
    }
}

/* The thread count grucy plans with: OpenBLAS's, or, during a serial run, what it was. */
static inline int grucy_pool_threads(void) {
    pthread_mutex_lock(&grucy_pool.count);
    int n = grucy_pool_planned > 0 ? grucy_pool_planned : grucy_blas_get_threads();
    pthread_mutex_unlock(&grucy_pool.count);
    return n;
}

/* Set OpenBLAS's thread count between runs (not in the middle of a serial one). */
static inline void grucy_pool_set_threads(int n) {
    pthread_mutex_lock(&grucy_pool.use);
    pthread_mutex_lock(&grucy_pool.count);
    grucy_blas_set_threads(n);
    pthread_mutex_unlock(&grucy_pool.count);
    pthread_mutex_unlock(&grucy_pool.use);
}

/* OpenBLAS's threading callback: its njobs jobs (jobdata, elsize bytes apart) on the pool,
   dojob(i, job i, data) with i the job's thread index (OpenBLAS picks buffers by it). */
typedef struct {
    void (*dojob)(int, void *, int);
    char *jobs;
    size_t elsize;
    int data;
    int top;                   /* grucy_pool_blas_shared: job i's slot is top - i */
} grucy_blas_run;

static void grucy_pool_blas_job(int i, void *arg) {
    grucy_blas_run *r = (grucy_blas_run *)arg;
    r->dojob(i, r->jobs + (size_t)i * r->elsize, r->data);
}

static inline void grucy_pool_blas(int sync, void (*dojob)(int, void *, int), int njobs,
                            size_t elsize, void *jobs, int data) {
    grucy_blas_run r = {dojob, (char *)jobs, elsize, data, 0};
    (void)sync;                                 /* OpenBLAS passes 1: wait for all */
    if (njobs <= 1 || grucy_in_job) {
        grucy_pool_run_jobs(njobs, grucy_pool_blas_job, &r, 0);
    } else if (grucy_pool_use_for_blas()) {
        grucy_pool_run_held(njobs, grucy_pool_blas_job, &r, 0);
        pthread_mutex_unlock(&grucy_pool.use);
    } else {
        grucy_pool_run_nested(njobs, grucy_pool_blas_job, &r);
    }
}

/* The callback handed to another OpenBLAS (numpy's: grucy.share_threads_with_numpy). Its
   dojob is OpenBLAS's exec_threads (driver/others/blas_server.c), whose first argument is
   not the job's number (that is in the job) but a thread slot: it marks
   thread_status[slot] busy, then free, and takes blas_thread_buffer[slot] as scratch.
   Slots 0..n-2 belong to that library's own server threads, which still get work past the
   callback: its LU (getrf_parallel: numpy's solve, inv, det) queues jobs to them with
   exec_blas_async. With job i in slot i, a numpy product's job from another thread
   overwrote the LU's queued job, the server never ran it and the LU spun for ever. So job
   i runs in slot top - i, counted down from the arrays' last entry (MAX_THREADS - 1 of
   that library), clear of the servers while its thread count is at most about half of
   MAX_THREADS (share_threads_with_numpy checks). grucy's own OpenBLAS runs no LAPACK, so
   grucy_pool_blas keeps slot i, whose buffers OpenBLAS has made ready (a slot without
   one allocates and frees scratch per job). Runs are one at a time: no two callback jobs
   share a slot. */
static atomic_int grucy_shared_top = 0;        /* set before the callback is handed over */

static void grucy_pool_shared_job(int i, void *arg) {
    grucy_blas_run *r = (grucy_blas_run *)arg;
    r->dojob(r->top - i, r->jobs + (size_t)i * r->elsize, r->data);
}

static inline void grucy_pool_blas_shared(int sync, void (*dojob)(int, void *, int),
                                          int njobs, size_t elsize, void *jobs, int data) {
    grucy_blas_run r = {dojob, (char *)jobs, elsize, data,
                        atomic_load_explicit(&grucy_shared_top, memory_order_relaxed)};
    (void)sync;
    grucy_pool_run_jobs(njobs, grucy_pool_shared_job, &r, 0);
}

static inline void grucy_pool_set_shared_top(int top) {
    atomic_store_explicit(&grucy_shared_top, top, memory_order_relaxed);
}

/* How many runs of more than one job have started (the count survives fork). */
static inline unsigned long grucy_pool_runs(void) {
    return atomic_load_explicit(&grucy_pool.runs, memory_order_relaxed);
}

/* How many of those were started from inside a job (and ran on threads of their own). */
static inline unsigned long grucy_pool_nested(void) {
    return atomic_load_explicit(&grucy_pool.nested, memory_order_relaxed);
}

/* How many serial runs (grucy_pool_run_serial: more than one job, not inside a job). */
static inline unsigned long grucy_pool_serial(void) {
    return atomic_load_explicit(&grucy_pool.serial, memory_order_relaxed);
}

/* How many jobs a caller ran in place of a worker that had not started them. */
static inline unsigned long grucy_pool_taken(void) {
    return atomic_load_explicit(&grucy_pool.taken, memory_order_relaxed);
}

/* Tests: 1 makes workers leave every job a caller may take over to the caller, as workers
   kept off their cores would; 0 ends that. */
static inline void grucy_pool_hold(int on) {
    atomic_store_explicit(&grucy_pool.hold, on, memory_order_relaxed);
}

/* Have workers for runs of up to n jobs; returns 0, or -1 if they could not all start. */
static inline int grucy_pool_reserve(int n) {
    pthread_mutex_lock(&grucy_pool.use);
    int ok = grucy_pool_grow(n - 1) >= n - 1;
    pthread_mutex_unlock(&grucy_pool.use);
    return ok ? 0 : -1;
}

static void grucy_pool_after_fork_child(void) {
    /* forked during another thread's serial run: OpenBLAS stays at one thread (safe; the
       README's fork paragraph says so, and grucy.set_num_threads sets it again) */
    grucy_pool_planned = 0;
    atomic_store_explicit(&grucy_pool.gemm_runs, 0, memory_order_relaxed);  /* their threads
                                                                  are not in the child */
    pthread_mutex_init(&grucy_pool.use, NULL);
    pthread_mutex_init(&grucy_pool.count, NULL);
    pthread_mutex_init(&grucy_pool.lock, NULL);
    pthread_cond_init(&grucy_pool.wake, NULL);
    grucy_pool.workers = 0;
    grucy_pool.sleeping = 0;
}

/* Call once, before the first run: OpenBLAS's thread-count functions and the fork handler.
   Returns 0 on success. */
static inline int grucy_pool_init(int (*get_threads)(void), void (*set_threads)(int)) {
    grucy_blas_get_threads = get_threads;
    grucy_blas_set_threads = set_threads;
    return pthread_atfork(NULL, NULL, grucy_pool_after_fork_child);
}

#endif
