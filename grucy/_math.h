/* grucy's sigmoid and tanh: branch-free, straight-line C that gcc inlines and vectorises
   inside the gate loops (grucy/_gates.h). Method and accuracy: grucy/_math.pxd's docstring;
   tests/test_math.py checks the bounds against libm on every dispatch path. */
#ifndef GRUCY_MATH_H
#define GRUCY_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bit casts, all in unsigned arithmetic: well defined even for NaN's garbage exponents. */
static inline float grucy_f32_from_bits(uint32_t i) { float f; memcpy(&f, &i, 4); return f; }
static inline uint32_t grucy_f32_bits(float f) { uint32_t i; memcpy(&i, &f, 4); return i; }
static inline double grucy_f64_from_bits(uint64_t i) { double f; memcpy(&f, &i, 8); return f; }
static inline uint64_t grucy_f64_bits(double f) { uint64_t i; memcpy(&i, &f, 8); return i; }

/* x with |x| capped at lim (sign kept; NaN and ±inf's sign pass through, inf capped), for
   the double functions. Integer compares on the bits: a float compare-and-select is a branch
   that gcc does not if-convert under the default -ftrapping-math. The float functions use
   plain float selects instead (one max/blend each): setup.py builds them with
   -fno-trapping-math, which gcc needs to if-convert them; other compilers may branch there,
   which is slower but computes the same. */
static inline double grucy_cap_d(double x, double lim) {
    uint64_t b = grucy_f64_bits(x), a = b & 0x7fffffffffffffffull;
    int big = ((int64_t)a > (int64_t)grucy_f64_bits(lim))
              & ((int64_t)a <= (int64_t)0x7ff0000000000000ll);
    return grucy_f64_from_bits(big ? (grucy_f64_bits(lim) | (b & 0x8000000000000000ull)) : b);
}

/* expm1(r) for |r| <= ln2/2: r + r²·P(r), P Cephes expf's degree-5 polynomial, evaluated
   by Estrin's scheme (three independent pairs, then two FMAs) rather than Horner's: the
   gate passes are bound by the latency of their longest chain of dependent operations,
   and this cuts P's from six multiply-adds to three. */
static inline float grucy_expm1_reduced_f(float r) {
    float z = r * r, z2 = z * z;
    float p01 = 1.6666665459E-1f * r + 5.0000001201E-1f;
    float p23 = 8.3334519073E-3f * r + 4.1665795894E-2f;
    float p45 = 1.9875691500E-4f * r + 1.3981999507E-3f;
    float p = z2 * p45 + (z * p23 + p01);
    return p * z + r;
}

/* e^y for y in [-88, 0] (or NaN) as 2^n · e^r = s + s·expm1(r), one rounding in the FMA.
   Round-to-nearest n by the shift (1.5·2^23 + 127): t's low mantissa bits then hold n + 127
   in [0, 127], and shifting them into the exponent field gives s = 2^n without a float->int
   conversion; n = -127 (y < -87.68) gives s = 0 and e^y = 0, below the smallest normal. */
static inline float grucy_exp_neg_f(float y, float *s_out) {
    const float shift = 12583039.0f;                /* 1.5 * 2^23 + 127 */
    float t = y * 1.44269504088896341f + shift;
    float n = t - shift;
    float r = y - n * 0.693359375f;                 /* ln2 in two parts: n·hi is exact */
    r = r - n * -2.12194440e-4f;
    float s = grucy_f32_from_bits(grucy_f32_bits(t) << 23);
    *s_out = s;
    return grucy_expm1_reduced_f(r);
}

/* expm1(r) for |r| <= ln2/2 (Cephes exp Padé form: 2·r·P(r²) / (Q(r²) − r·P(r²))). */
static inline double grucy_expm1_reduced_d(double r) {
    double z = r * r;
    double p = 1.26177193074810590878E-4;
    p = p * z + 3.02994407707441961300E-2;
    p = p * z + 9.99999999999999999910E-1;
    p = p * r;
    double q = 3.00198505138664455042E-6;
    q = q * z + 2.52448340349684104192E-3;
    q = q * z + 2.27265548208155028766E-1;
    q = q * z + 2.00000000000000000009E0;
    return 2.0 * p / (q - p);
}

static inline double grucy_exp_d(double x) {
    x = grucy_cap_d(x, 746.0);     /* e^-746 rounds to 0; 2^1076 -> inf */
    const double shift = 6755399441055744.0;    /* 1.5 * 2^52 */
    double t = x * 1.4426950408889634073599 + shift;
    double n = t - shift;
    double r = x - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    int64_t ni = (int64_t)(grucy_f64_bits(t) - grucy_f64_bits(shift));
    int64_t n1 = ni >> 1, n2 = ni - n1;
    double s1 = grucy_f64_from_bits((uint64_t)(n1 + 1023) << 52);
    double s2 = grucy_f64_from_bits((uint64_t)(n2 + 1023) << 52);
    return ((grucy_expm1_reduced_d(r) + 1.0) * s1) * s2;
}

/* expm1(y) for y <= 0: 2^n·expm1(r) + (2^n − 1), exact where n = 0 (small |y|). */
static inline double grucy_expm1_neg_d(double y) {
    y = grucy_cap_d(y, 80.0);
    const double shift = 6755399441055744.0;
    double t = y * 1.4426950408889634073599 + shift;
    double n = t - shift;
    double r = y - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    int64_t ni = (int64_t)(grucy_f64_bits(t) - grucy_f64_bits(shift));
    double s = grucy_f64_from_bits((uint64_t)(ni + 1023) << 52);
    return s * grucy_expm1_reduced_d(r) + (s - 1.0);
}

/* sigmoid(a) = 1 / (1 + e^-a) for a >= 0 and e^a / (1 + e^a) below, with e = e^-|a| in
   (0, 1]: nothing overflows, and the result keeps its relative accuracy as it goes to 0.
   |a| is capped at 88 (NaN passes: the compare is false), where e^-|a| is already 0. */
static inline float grucy_sigmoid_f(float a) {
    float m = fabsf(a);
    m = m > 88.0f ? 88.0f : m;
    float s, q = grucy_exp_neg_f(-m, &s);
    float e = s * q + s;
    return (a < 0.0f ? e : 1.0f) / (1.0f + e);
}
static inline double grucy_sigmoid_d(double a) { return 1.0 / (1.0 + grucy_exp_d(-a)); }

/* tanh(a) = sign(a) · (−u) / (2 + u) with u = expm1(−2|a|) = 2^n·expm1(r) + (2^n − 1),
   exact where n = 0 (small |a|: no cancellation). |a| capped at 20, where u = -1 exactly. */
static inline float grucy_tanh_f(float a) {
    float m = fabsf(a);
    m = m > 20.0f ? 20.0f : m;
    float s, q = grucy_exp_neg_f(-2.0f * m, &s);
    float u = s * q + (s - 1.0f);
    return copysignf(-u / (2.0f + u), a);
}
static inline double grucy_tanh_d(double a) {
    double u = grucy_expm1_neg_d(-2.0 * fabs(a));
    return copysign(-u / (2.0 + u), a);
}

#endif
