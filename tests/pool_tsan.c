/* grucy's thread pool (grucy/_pool.h) under ThreadSanitizer, without Python or OpenBLAS
   (tests/test_kernels_threads.py builds and runs it where gcc has TSan):

       gcc -std=c11 -O1 -g -fsanitize=thread -Igrucy -o /tmp/pool_tsan tests/pool_tsan.c -lpthread
       ROUNDS=1500 /tmp/pool_tsan HOLD CALLERS       (HOLD: 0 off, 1 on, 2 flipped; CALLERS 1-3)

   Jobs write plain memory that their caller reads after the run, and count their own runs;
   TSan reports a write the run's end does not order before the caller's read, and the
   counts catch a job run twice or not at all. Each caller thread mixes, at random: grucy's
   own jobs (open: the caller takes over those no worker has started), jobs that must run
   where posted, serial runs, OpenBLAS's callback and nested runs from inside a job, with
   2 to 4 jobs so that workers sit runs out and see several mailbox bumps at once. HOLD 2
   flips pool_hold every few hundred microseconds, so that workers leave open jobs to the
   caller in some runs and race it for them in others. Ends with the pool's counters and
   exit status 0; TSan's reports and exit status 66 otherwise. Moving a worker's `pending`
   decrement before its job, or its exchange of `posted` to relaxed order, gives reports. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "_pool.h"

#define NJ 4                        /* jobs per run at most: workers 1..3 */
#define MAX_CALLERS 3
#define K 16

/* OpenBLAS's thread count, as grucy_pool_init gets it (serial runs set it to 1) */
static atomic_int fake_threads = 3;
static int get_threads(void) { return atomic_load(&fake_threads); }
static void set_threads(int n) { atomic_store(&fake_threads, n); }

typedef struct {
    int njobs;
    int nested;                     /* job 1 starts a run of its own */
    unsigned seed;
    double in[NJ][K];               /* written by the caller before the run */
    double out[NJ][K];              /* job i's, read by the caller after it */
    int ran[NJ];                    /* plain counts: a job run twice at once is a race */
    double inner[NJ];               /* the nested run's */
} run_t;

static unsigned next(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* a job's length varies: a yield, a sleep or a short loop */
static void dawdle(unsigned *s) {
    unsigned r = next(s) % 8;
    if (r == 0)
        sched_yield();
    else if (r == 1)
        usleep(50);
    else
        for (volatile int k = 0; k < (int)(r * 200); k++)
            ;
}

static void inner_job(int i, void *arg) {
    run_t *r = (run_t *)arg;
    r->inner[i] = r->in[i][0] * 2;
}

static void job(int i, void *arg) {
    run_t *r = (run_t *)arg;
    unsigned s = r->seed + (unsigned)i * 7919u;
    r->ran[i]++;
    for (int k = 0; k < K; k++)
        r->out[i][k] = r->in[i][k] + i;
    dawdle(&s);
    if (r->nested && i == 1)
        grucy_pool_run(r->njobs, inner_job, r);
}

/* OpenBLAS's dojob(thread slot, job, data): each job its own run_t */
static void blas_dojob(int slot, void *jobp, int data) {
    run_t *r = (run_t *)jobp;
    (void)data;
    r->ran[0]++;
    r->out[0][0] = r->in[0][0] + slot;
}

static atomic_long failures = 0;

static void fail(const char *what, int mode, int i) {
    fprintf(stderr, "mode %d job %d: %s\n", mode, i, what);
    atomic_fetch_add(&failures, 1);
}

static void check(const run_t *r, int mode) {
    for (int i = 0; i < r->njobs; i++) {
        if (r->ran[i] != 1)
            fail("did not run exactly once", mode, i);
        for (int k = 0; k < K; k++)
            if (r->out[i][k] != r->in[i][k] + i) {
                fail("wrong output", mode, i);
                break;
            }
        if (r->nested && r->inner[i] != r->in[i][0] * 2)
            fail("wrong nested output", mode, i);
    }
}

static void *caller(void *p) {
    unsigned s = (unsigned)(intptr_t)p * 2654435761u;
    int rounds = atoi(getenv("ROUNDS") ? getenv("ROUNDS") : "1500");
    for (int n = 0; n < rounds; n++) {
        int mode = next(&s) % 5;
        run_t *r = calloc(1, sizeof(run_t));      /* fresh memory each run */
        r->njobs = 2 + (int)(next(&s) % (NJ - 1));
        r->seed = s;
        r->nested = mode == 0 && (next(&s) & 1);
        for (int i = 0; i < NJ; i++)
            for (int k = 0; k < K; k++)
                r->in[i][k] = n * 100 + i * 10 + k;
        if (mode == 0) {
            grucy_pool_run(r->njobs, job, r);
        } else if (mode == 1) {
            grucy_pool_run_jobs(r->njobs, job, r, 0);
        } else if (mode == 2) {
            grucy_pool_run_serial(r->njobs, job, r);
        } else if (mode == 3) {
            grucy_pool_run_gemms(r->njobs, job, r);
        } else {
            run_t *jobs = calloc(NJ, sizeof(run_t));
            for (int i = 0; i < r->njobs; i++)
                jobs[i].in[0][0] = i;
            grucy_pool_blas(1, blas_dojob, r->njobs, sizeof(run_t), jobs, 0);
            for (int i = 0; i < r->njobs; i++)      /* grucy_pool_blas: job i in slot i */
                if (jobs[i].ran[0] != 1 || jobs[i].out[0][0] != 2 * i)
                    fail("OpenBLAS job wrong", mode, i);
            free(jobs);
            r->njobs = 0;                           /* nothing for check */
        }
        check(r, mode);
        free(r);
    }
    return NULL;
}

static atomic_int stop = 0;

static void *flipper(void *p) {
    unsigned s = 1;
    (void)p;
    while (!atomic_load(&stop)) {
        grucy_pool_hold(next(&s) & 1);
        usleep(100 + next(&s) % 400);
    }
    grucy_pool_hold(0);
    return NULL;
}

int main(int argc, char **argv) {
    int hold = argc > 1 ? atoi(argv[1]) : 2;
    int callers = argc > 2 ? atoi(argv[2]) : MAX_CALLERS;
    if (hold < 0 || hold > 2 || callers < 1 || callers > MAX_CALLERS) {
        fprintf(stderr, "usage: pool_tsan [HOLD 0|1|2] [CALLERS 1-%d]\n", MAX_CALLERS);
        return 2;
    }
    if (grucy_pool_init(get_threads, set_threads) != 0 || grucy_pool_reserve(NJ) != 0) {
        fprintf(stderr, "pool_tsan: could not start the pool\n");
        return 2;
    }
    pthread_t t[MAX_CALLERS], flip;
    if (hold == 1)
        grucy_pool_hold(1);
    if (hold == 2)
        pthread_create(&flip, NULL, flipper, NULL);
    for (int c = 0; c < callers; c++)
        pthread_create(&t[c], NULL, caller, (void *)(intptr_t)(c + 1));
    for (int c = 0; c < callers; c++)
        pthread_join(t[c], NULL);
    atomic_store(&stop, 1);
    if (hold == 2)
        pthread_join(flip, NULL);
    printf("hold=%d callers=%d runs=%lu nested=%lu serial=%lu taken=%lu threads=%d failures=%ld\n",
           hold, callers, grucy_pool_runs(), grucy_pool_nested(), grucy_pool_serial(),
           grucy_pool_taken(), get_threads(), atomic_load(&failures));
    return atomic_load(&failures) ? 1 : 0;
}
