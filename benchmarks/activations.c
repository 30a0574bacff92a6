/* What the gate passes cannot go below: grucy's float sigmoid and tanh (grucy/_math.h) and
   their parts, each alone in a loop over 2048 floats in L1, compiled for AVX2+FMA as the
   passes' dispatched copy is (x86-64, gcc or clang):

       gcc -O3 -fno-trapping-math -o /tmp/activations benchmarks/activations.c -lm
       /tmp/activations

   Prints ns per float (best of 25 samples) and cycles per 8-float vector, the clock taken
   from a chain of dependent integer adds (one per cycle). A GRU unit needs two sigmoids and
   a tanh per step; the last line is that sum, the least a gate pass can cost per unit. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../grucy/_math.h"

#define N 2048
#define V __attribute__((target("avx2,fma"), noinline))

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

V static void sigmoid(const float *restrict a, float *restrict o) {
    for (ptrdiff_t i = 0; i < N; i++) o[i] = grucy_sigmoid_f(a[i]);
}
V static void tanh_(const float *restrict a, float *restrict o) {
    for (ptrdiff_t i = 0; i < N; i++) o[i] = grucy_tanh_f(a[i]);
}
V static void exp_neg(const float *restrict a, float *restrict o) {  /* e^-|a|: range reduction,
                                                                          polynomial, 2^n */
    for (ptrdiff_t i = 0; i < N; i++) {
        float m = fabsf(a[i]), s;
        m = m > 88.0f ? 88.0f : m;
        float q = grucy_exp_neg_f(-m, &s);
        o[i] = s * q + s;
    }
}
V static void poly(const float *restrict a, float *restrict o) {     /* the polynomial alone */
    for (ptrdiff_t i = 0; i < N; i++) o[i] = grucy_expm1_reduced_f(a[i]);
}
V static void divide(const float *restrict a, float *restrict o) {   /* one divide per float */
    for (ptrdiff_t i = 0; i < N; i++) o[i] = 1.0f / (1.0f + a[i] * a[i]);
}

static double ghz(void) {                  /* dependent adds: one per cycle on x86-64 cores */
    double best = 1e9;
    for (int k = 0; k < 5; k++) {
        long n = 200000000, x = 0;
        double t0 = now();
        __asm__ volatile("1: add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "sub $4, %1\n\tjnz 1b" : "+r"(x), "+r"(n));
        double t = now() - t0;
        if (t < best) best = t;
    }
    return 200000000 / best / 1e9;
}

int main(void) {
    static float a[N] __attribute__((aligned(32))), o[N] __attribute__((aligned(32)));
    for (int i = 0; i < N; i++) a[i] = 6.0f * ((i * 7919) % 1000 / 500.0f - 1.0f);  /* [-6, 6) */
    void (*fn[])(const float *restrict, float *restrict) = {sigmoid, tanh_, exp_neg, poly, divide};
    const char *name[] = {"sigmoid", "tanh", "exp(-|a|)", "polynomial", "divide"};
    enum { K = sizeof fn / sizeof fn[0] };
    double best[K];
    for (int k = 0; k < K; k++) best[k] = 1e9;
    for (int rep = 0; rep < 25; rep++)                 /* interleaved: drifts hit all alike */
        for (int k = 0; k < K; k++) {
            double t0 = now();
            for (int r = 0; r < 2000; r++) fn[k](a, o);
            double t = (now() - t0) / 2000 / N * 1e9;
            if (t < best[k]) best[k] = t;
        }
    double f = ghz();
    printf("clock ~%.2f GHz\n", f);
    for (int k = 0; k < K; k++)
        printf("%-11s %.3f ns/float  %5.1f cycles per 8 floats\n", name[k], best[k], best[k] * 8 * f);
    printf("2 sigmoids + 1 tanh: %.2f ns per GRU unit and step\n", 2 * best[0] + best[1]);
    return o[N / 2] == 12345.0f;                       /* keep the results live */
}
