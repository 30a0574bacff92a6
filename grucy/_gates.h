/* The GRU gate passes as plain C, compiled three times and picked at run time.

   Why C and not Cython: each pass is one loop over the rows of a step and their H units,
   and two things make it fast that Cython cannot say. `restrict` pointers let gcc vectorise
   loops that write several arrays without runtime alias checks; function attributes
   (`target(...)`) compile more copies for newer x86-64 CPUs: AVX2+FMA, 8 floats per
   instruction instead of SSE2's 4, and fused multiply-adds in the polynomials; and AVX-512
   (F, VL, DQ, BW, with gcc told to prefer 512-bit vectors), 16 floats per instruction. The
   build stays portable (no -march): the copy is chosen once, at module import, from the
   CPU's feature bits (grucy_simd_select), and a CPU, compiler or architecture without them
   runs the baseline copy. FMA rounds once where the baseline rounds twice, so results differ
   in the last bits between the copies; tests/test_math.py holds every copy to the same ulp
   bounds. On a Xeon with AVX-512 its sigmoid and tanh took 0.58-0.66x the AVX2 copy's time
   (two runs of benchmarks/activations.c), and the kernels 0.86-0.93x for inference and
   0.91-0.99x for training at H <= 128 (benchmarks/copies.py, which switches the copies in
   one process).

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
#define GRUCY_HAVE_DISPATCH 1
#define GRUCY_V3 __attribute__((target("avx2,fma")))
#if defined(__clang__)      /* no prefer-vector-width target in clang */
#define GRUCY_V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#else
#define GRUCY_V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma," \
                                       "prefer-vector-width=512")))
#endif
#define GRUCY_INLINE static inline __attribute__((always_inline))
#else
#define GRUCY_HAVE_DISPATCH 0
#define GRUCY_INLINE static inline
#endif

/* The copy in force: each extension module has its own flag. */
enum { GRUCY_SIMD_BASELINE = 0, GRUCY_SIMD_AVX2 = 1, GRUCY_SIMD_AVX512 = 2 };
static int grucy_simd = GRUCY_SIMD_BASELINE;

/* Run the best copy this CPU has, up to level `most` (GRUCY_SIMD_AVX512: the CPU's best;
   lower forces an older copy, for tests). Returns the level now in force. */
static inline int grucy_simd_select(int most) {
    int have = GRUCY_SIMD_BASELINE;
#if GRUCY_HAVE_DISPATCH
    __builtin_cpu_init();     /* the avx* bits are set only where the OS saves their registers */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        have = GRUCY_SIMD_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
                && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
            have = GRUCY_SIMD_AVX512;
    }
#endif
    grucy_simd = most < GRUCY_SIMD_BASELINE ? GRUCY_SIMD_BASELINE : most < have ? most : have;
    return grucy_simd;
}

/* One entry point per pass: a baseline, an AVX2+FMA and an AVX-512 copy (each inlines the
   generic body and vectorises it for its own target) and the dispatcher the kernels call. */
#define GRUCY_ENTRY(name, body, params, args) GRUCY_ENTRY_(name, body, params, args)
#if GRUCY_HAVE_DISPATCH
#define GRUCY_ENTRY_(name, body, params, args)                                   \
    static GRUCY_V4 __attribute__((unused)) void name##_v4 params { body args; } \
    static GRUCY_V3 __attribute__((unused)) void name##_v3 params { body args; } \
    static __attribute__((unused)) void name##_base params { body args; }        \
    static inline void name params {                                             \
        if (grucy_simd == GRUCY_SIMD_AVX512) name##_v4 args;                     \
        else if (grucy_simd == GRUCY_SIMD_AVX2) name##_v3 args;                  \
        else name##_base args;                                                   \
    }
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
