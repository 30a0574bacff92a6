/* What the gate passes cannot go below: grucy's float sigmoid and tanh (grucy/_math.h) and
   their parts, each alone in a loop over 2048 floats in L1, compiled for AVX2+FMA as the
   passes' AVX2 copy is, and sigmoid and tanh again for AVX-512 as the passes' newest copy is
   (that part runs only where the CPU has AVX-512; x86-64, gcc or clang):

       gcc -O3 -fno-trapping-math -o /tmp/activations benchmarks/activations.c -lm
       /tmp/activations

   Prints ns per float (best of 25 samples) and cycles per vector (8 or 16 floats), the
   clock taken from a chain of dependent integer adds (one per cycle). A GRU unit needs two
   sigmoids and a tanh per step; that sum is the least a gate pass can cost per unit.

   Also times a candidate, not used by grucy: a table-driven sigmoid (e^y as 2^(j/8) from an
   8-entry register table, vpermps, times a degree-4 polynomial on |r| <= ln2/16), with its
   largest error against long-double libm over a sweep of floats; and a second one, a
   sigmoid and a tanh without the divide (1/d by a polynomial, a Newton step and a
   correction of the quotient: seven multiply-adds where grucy divides), which shows whether
   the divide is what the activations wait on. */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../grucy/_math.h"

#define N 2048
#define V __attribute__((target("avx2,fma"), noinline))
#ifdef __clang__                                       /* as grucy/_gates.h's GRUCY_V4 */
#define V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), noinline))
#else
#define V4 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma," \
                                 "prefer-vector-width=512"), noinline))
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A timed loop: fn over the N floats of a, into o, compiled for one copy (V or V4). */
#define LOOP(copy, name, fn)                                             \
    copy static void name(const float *restrict a, float *restrict o) { \
        for (ptrdiff_t i = 0; i < N; i++) o[i] = fn(a[i]);               \
    }
LOOP(V, sigmoid, grucy_sigmoid_f)
LOOP(V, tanh_, grucy_tanh_f)
LOOP(V4, sigmoid_512, grucy_sigmoid_f)
LOOP(V4, tanh_512, grucy_tanh_f)
V static void exp_neg(const float *restrict a, float *restrict o) {  /* e^-|a|: range reduction,
                                                                          polynomial, 2^n */
    for (ptrdiff_t i = 0; i < N; i++) {
        float m = fabsf(a[i]), s;
        m = m > 88.0f ? 88.0f : m;
        float q = grucy_exp_neg_f(-m, &s);
        o[i] = s * q + s;
    }
}
LOOP(V, poly, grucy_expm1_reduced_f)                                  /* the polynomial alone */
V static void divide(const float *restrict a, float *restrict o) {   /* one divide per float */
    for (ptrdiff_t i = 0; i < N; i++) o[i] = 1.0f / (1.0f + a[i] * a[i]);
}

/* The candidate: e^y for y in [-87, 0] as 2^n · T[j] · e^r, y = (8n + j)·ln2/8 + r. T[j] is
   rounded to float (about half an ulp more error than grucy's exact 2^n), which a lo table
   could remove at one more permute. */
V static void sigmoid_table(const float *restrict a, float *restrict o) {
    const __m256 tab = _mm256_setr_ps(1.0f, 1.0905077326652577f, 1.189207115002721f,
                                      1.2968395546510096f, 1.4142135623730951f,
                                      1.5422108254079407f, 1.6817928305074290f,
                                      1.8340080864093424f);           /* 2^(j/8) */
    const __m256 shift = _mm256_set1_ps(12582912.0f);                   /* 1.5 * 2^23 */
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 one = _mm256_set1_ps(1.0f);
    for (ptrdiff_t i = 0; i < N; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        __m256 y = _mm256_sub_ps(_mm256_setzero_ps(),
                                 _mm256_min_ps(_mm256_and_ps(x, absmask), _mm256_set1_ps(87.0f)));
        __m256 t = _mm256_fmadd_ps(y, _mm256_set1_ps(11.541560327111707f), shift);  /* 8/ln2 */
        __m256 k = _mm256_sub_ps(t, shift);
        __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.086669921875f), y);  /* ln2/8, hi */
        r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.6524305e-05f), r);          /*   and lo */
        __m256i ti = _mm256_castps_si256(t);                  /* low 22 bits: k + 2^22 */
        __m256i n23 = _mm256_slli_epi32(_mm256_srai_epi32(_mm256_slli_epi32(ti, 10), 13), 23);
        __m256 s = _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_castps_si256(_mm256_permutevar8x32_ps(tab, ti)), n23));   /* T[j] 2^n */
        __m256 r2 = _mm256_mul_ps(r, r);
        __m256 q = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 6), _mm256_set1_ps(0.5f));
        q = _mm256_fmadd_ps(r2, _mm256_set1_ps(1.0f / 24), q);
        __m256 e = _mm256_fmadd_ps(s, _mm256_fmadd_ps(r2, q, r), s);        /* s·e^r */
        __m256 num = _mm256_blendv_ps(one, e, x);                  /* e where x < 0 */
        _mm256_storeu_ps(o + i, _mm256_div_ps(num, _mm256_add_ps(one, e)));
    }
}

/* The second candidate: x / d for d in [1, 2] (1 + e^-|a| in the sigmoid, 2 + expm1(-2|a|)
   in the tanh) with no divide. r0 = (210 - 144d + 32d²)/99 is 1/d to a relative 1/99 (the
   Chebyshev-optimal quadratic), a Newton step squares that to 1e-4, and one correction of
   the quotient q (rem = x - dq, exact in an FMA) squares it again, below half an ulp. */
static inline float div12(float x, float d) {
    float r = (0.32323232f * d - 1.45454545f) * d + 2.12121212f;
    r = r + r * (1.0f - d * r);
    float q = x * r;
    return q + (x - d * q) * r;
}
static inline float sigmoid_nodiv_f(float a) {          /* grucy_sigmoid_f, divide replaced */
    float m = fabsf(a);
    m = m > 88.0f ? 88.0f : m;
    float s, q = grucy_exp_neg_f(-m, &s);
    float e = s * q + s;
    return div12(a < 0.0f ? e : 1.0f, 1.0f + e);
}
static inline float tanh_nodiv_f(float a) {             /* grucy_tanh_f, divide replaced */
    float m = fabsf(a);
    m = m > 20.0f ? 20.0f : m;
    float s, q = grucy_exp_neg_f(-2.0f * m, &s);
    float u = s * q + (s - 1.0f);
    return copysignf(div12(-u, 2.0f + u), a);
}
LOOP(V, sigmoid_nodiv, sigmoid_nodiv_f)
LOOP(V, tanh_nodiv, tanh_nodiv_f)
LOOP(V4, sigmoid_nodiv_512, sigmoid_nodiv_f)
LOOP(V4, tanh_nodiv_512, tanh_nodiv_f)

/* Largest error in ulps over every 4099th float with |x| < 87, both signs; for the sigmoid
   only where its value is a normal float (grucy's, like the candidates', is 0 below that). */
static double worst_ulp(void (*fn)(const float *restrict, float *restrict), int is_tanh) {
    static float x[N] __attribute__((aligned(32))), y[N] __attribute__((aligned(32)));
    double worst = 0;
    int m = 0;
    for (uint32_t u = 0; u < 0x42ae0000u; u += 4099) {            /* |x| < 87, both signs */
        for (int sign = 0; sign < 2; sign++) {
            uint32_t w = u | (sign ? 0x80000000u : 0);
            memcpy(&x[m++], &w, 4);
            if (m < N) continue;
            fn(x, y);
            for (int i = 0; i < N; i++) {
                long double truth = is_tanh ? tanhl((long double)x[i])
                                            : 1.0L / (1.0L + expl(-(long double)x[i]));
                float rounded = fabsf((float)truth);
                if (rounded < 1.17549435e-38f) continue;          /* FLT_MIN */
                double ulp = (double)(nextafterf(rounded, INFINITY) - rounded);
                double err = (double)fabsl((long double)y[i] - truth) / ulp;
                if (err > worst) worst = err;
            }
            m = 0;
        }
    }
    return worst;
}

/* Dependent register adds: one per cycle on x86-64 cores. Not `add $1`: newer Intel cores
   (Golden Cove on) fold small immediate adds at rename, two or more per cycle. */
static double ghz(void) {
    double best = 1e9;
    for (int k = 0; k < 5; k++) {
        long n = 200000000, x = 0, one = 1;
        double t0 = now();
        __asm__ volatile("1: add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
                         "sub $4, %1\n\tjnz 1b" : "+r"(x), "+r"(n) : "r"(one));
        double t = now() - t0;
        if (t < best) best = t;
    }
    return 200000000 / best / 1e9;
}

int main(void) {
    static float a[N] __attribute__((aligned(32))), o[N] __attribute__((aligned(32)));
    for (int i = 0; i < N; i++) a[i] = 6.0f * ((i * 7919) % 1000 / 500.0f - 1.0f);  /* [-6, 6) */
    void (*fn[])(const float *restrict, float *restrict) = {
        sigmoid, tanh_, exp_neg, poly, divide, sigmoid_table, sigmoid_nodiv, tanh_nodiv,
        sigmoid_512, tanh_512, sigmoid_nodiv_512, tanh_nodiv_512};
    const char *name[] = {"sigmoid", "tanh", "exp(-|a|)", "polynomial", "divide",
                          "candidate", "no divide sig", "no divide tanh",
                          "sigmoid", "tanh", "no divide sig", "no divide tanh"};
    __builtin_cpu_init();
    int v4 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
             && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
    enum { K = sizeof fn / sizeof fn[0], K2 = 8 };     /* the AVX2 copies come first */
    const int k_end = v4 ? K : K2;
    double best[K];
    for (int k = 0; k < K; k++) best[k] = 1e9;
    for (int rep = 0; rep < 25; rep++)                 /* interleaved: drifts hit all alike */
        for (int k = 0; k < k_end; k++) {
            double t0 = now();
            for (int r = 0; r < 2000; r++) fn[k](a, o);
            double t = (now() - t0) / 2000 / N * 1e9;
            if (t < best[k]) best[k] = t;
        }
    double f = ghz();
    printf("clock ~%.2f GHz\nAVX2+FMA copy:\n", f);
    for (int k = 0; k < K2; k++)
        printf("%-15s %.3f ns/float  %5.1f cycles per 8 floats\n", name[k], best[k], best[k] * 8 * f);
    printf("2 sigmoids + 1 tanh: %.2f ns per GRU unit and step; without the divide %.2f\n",
           2 * best[0] + best[1], 2 * best[6] + best[7]);
    if (v4) {
        printf("AVX-512 copy:\n");
        for (int k = K2; k < K; k++)
            printf("%-15s %.3f ns/float  %5.1f cycles per 16 floats\n", name[k], best[k],
                   best[k] * 16 * f);
        printf("2 sigmoids + 1 tanh: %.2f ns per GRU unit and step (%.2fx the AVX2 copy's); "
               "without the divide %.2f\n", 2 * best[K2] + best[K2 + 1],
               (2 * best[K2] + best[K2 + 1]) / (2 * best[0] + best[1]),
               2 * best[K2 + 2] + best[K2 + 3]);
    } else {
        printf("AVX-512 copy: not timed, this CPU has no AVX-512\n");
    }
    printf("candidate table sigmoid: %.2fx grucy's sigmoid's time; largest error %.2f ulp "
           "(grucy's: %.2f) over every 4099th float\n", best[5] / best[0],
           worst_ulp(sigmoid_table, 0), worst_ulp(sigmoid, 0));
    printf("no-divide candidates (AVX2 copy): sigmoid %.2fx and tanh %.2fx grucy's time; largest "
           "error %.2f and %.2f ulp (grucy's: %.2f and %.2f)\n", best[6] / best[0],
           best[7] / best[1], worst_ulp(sigmoid_nodiv, 0), worst_ulp(tanh_nodiv, 1),
           worst_ulp(sigmoid, 0), worst_ulp(tanh_, 1));
    return o[N / 2] == 12345.0f;                       /* keep the results live */
}
