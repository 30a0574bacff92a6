/* The GRU gate passes as plain C, compiled twice and picked at run time.

   Why C and not Cython: each pass is one loop over the rows of a step and their H units,
   and two things make it fast that Cython cannot say. `restrict` pointers let gcc vectorise
   loops that write several arrays without runtime alias checks; a function attribute
   (`target("avx2,fma")`) compiles a second copy for AVX2+FMA, 8 floats per instruction
   instead of SSE2's 4, and fused multiply-adds in the polynomials. The build stays portable
   (no -march): the copy is chosen once, at module import, from the CPU's feature bits
   (grucy_simd_init), and a CPU, compiler or architecture without them runs the baseline copy.
   FMA rounds once where the baseline rounds twice, so results differ in the last bits between
   the two copies; tests/test_math.py holds both to the same ulp bounds.

   The passes read and write whole (n, H) or (n, 3H) blocks: n rows of one step, row stride
   3H for gate-shaped rows (xp, hp, gates, dA) and H for state-shaped ones. A step without
   padding is one call over all B rows; padded steps call per row with n = 1.
   The equations and their numbers are grucy/_gru.pyx's header. */
#ifndef GRUCY_GATES_H
#define GRUCY_GATES_H

#include <stddef.h>
#include "_math.h"
#include "_pool.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(GRUCY_NO_DISPATCH)
#define GRUCY_HAVE_V3 1
#define GRUCY_V3 __attribute__((target("avx2,fma")))
#define GRUCY_INLINE static inline __attribute__((always_inline))
#else
#define GRUCY_HAVE_V3 0
#define GRUCY_V3
#define GRUCY_INLINE static inline
#endif

/* 1: run the AVX2+FMA copies. Each extension module has its own copy of this flag. */
static int grucy_v3 = 0;

/* Pick the copy for this CPU (on = 1), or force the baseline (on = 0, for tests).
   Returns the flag now in force. */
static inline int grucy_simd_select(int on) {
#if GRUCY_HAVE_V3
    __builtin_cpu_init();
    grucy_v3 = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)on;
    grucy_v3 = 0;
#endif
    return grucy_v3;
}

/* One entry point per pass: a baseline copy, an AVX2+FMA copy (both inline the generic body
   and vectorise it for their own target) and the dispatcher the kernels call. */
#define GRUCY_ENTRY(name, body, params, args) GRUCY_ENTRY_(name, body, params, args)
#if GRUCY_HAVE_V3
#define GRUCY_ENTRY_(name, body, params, args)                               \
    static GRUCY_V3 __attribute__((unused)) void name##_v3 params { body args; } \
    static __attribute__((unused)) void name##_base params { body args; }    \
    static inline void name params { if (grucy_v3) name##_v3 args; else name##_base args; }
#else
#define GRUCY_ENTRY_(name, body, params, args)                               \
    static inline void name params { body args; }
#endif

/* Run rows(job, b0, n) over n rows split into `parts` blocks at once on the pool (parts is
   capped at n, so a padded step's single rows run in one call, as does parts <= 1): the
   passes' `_par` entry points (grucy/_gates_t.h). */
typedef void (*grucy_rows_fn)(const void *job, ptrdiff_t b0, ptrdiff_t n);
typedef struct { grucy_rows_fn rows; const void *job; ptrdiff_t n, parts; } grucy_split_t;

static void grucy_split_job(int i, void *arg) {
    const grucy_split_t *s = (const grucy_split_t *)arg;
    ptrdiff_t lo = s->n * i / s->parts, hi = s->n * (i + 1) / s->parts;
    if (hi > lo)
        s->rows(s->job, lo, hi - lo);
}

static inline void grucy_split(int parts, ptrdiff_t n, grucy_rows_fn rows, const void *job) {
    if (parts > n)
        parts = (int)n;
    if (parts <= 1) {
        rows(job, 0, n);
        return;
    }
    grucy_split_t s = {rows, job, n, parts};
    grucy_pool_run(parts, grucy_split_job, &s);
}

#define GRUCY_R float
#define GRUCY_FN(name) grucy_##name##_f
#define GRUCY_SIGMOID grucy_sigmoid_f
#define GRUCY_TANH grucy_tanh_f
#include "_gates_t.h"
#undef GRUCY_R
#undef GRUCY_FN
#undef GRUCY_SIGMOID
#undef GRUCY_TANH

#define GRUCY_R double
#define GRUCY_FN(name) grucy_##name##_d
#define GRUCY_SIGMOID grucy_sigmoid_d
#define GRUCY_TANH grucy_tanh_d
#include "_gates_t.h"
#undef GRUCY_R
#undef GRUCY_FN
#undef GRUCY_SIGMOID
#undef GRUCY_TANH

#endif
