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

/* x with |x| capped at lim (sign kept; NaN and ±inf's sign pass through, inf capped).
   Integer compares on the bits: a float compare-and-select would be a branch that gcc
   does not if-convert under the default -ftrapping-math, and the loop would not vectorise. */
static inline float grucy_cap_f(float x, float lim) {
    uint32_t b = grucy_f32_bits(x), a = b & 0x7fffffffu;
    int big = ((int32_t)a > (int32_t)grucy_f32_bits(lim)) & ((int32_t)a <= 0x7f800000);
    return grucy_f32_from_bits(big ? (grucy_f32_bits(lim) | (b & 0x80000000u)) : b);
}

static inline double grucy_cap_d(double x, double lim) {
    uint64_t b = grucy_f64_bits(x), a = b & 0x7fffffffffffffffull;
    int big = ((int64_t)a > (int64_t)grucy_f64_bits(lim))
              & ((int64_t)a <= (int64_t)0x7ff0000000000000ll);
    return grucy_f64_from_bits(big ? (grucy_f64_bits(lim) | (b & 0x8000000000000000ull)) : b);
}

/* expm1(r) for |r| <= ln2/2 (Cephes expf polynomial without its leading 1). */
static inline float grucy_expm1_reduced_f(float r) {
    float z = r * r;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    return p * z + r;
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

/* e^x, float. Round-to-nearest n by the 1.5·2^23 shift: the low mantissa bits of t then
   hold n, so 2^n is built from t's bits without a float->int conversion. */
static inline float grucy_exp_f(float x) {
    x = grucy_cap_f(x, 104.0f);    /* e^-104 < half the least subnormal; 2^150 -> inf */
    const float shift = 12582912.0f;            /* 1.5 * 2^23 */
    float t = x * 1.44269504088896341f + shift;
    float n = t - shift;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    int32_t ni = (int32_t)(grucy_f32_bits(t) - grucy_f32_bits(shift));
    int32_t n1 = ni >> 1, n2 = ni - n1;         /* 2^n = 2^n1 · 2^n2, each normal */
    float s1 = grucy_f32_from_bits((uint32_t)(n1 + 127) << 23);
    float s2 = grucy_f32_from_bits((uint32_t)(n2 + 127) << 23);
    return ((grucy_expm1_reduced_f(r) + 1.0f) * s1) * s2;
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
static inline float grucy_expm1_neg_f(float y) {
    y = grucy_cap_f(y, 40.0f);     /* expm1(-40) rounds to -1 */
    const float shift = 12582912.0f;
    float t = y * 1.44269504088896341f + shift;
    float n = t - shift;
    float r = y - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    int32_t ni = (int32_t)(grucy_f32_bits(t) - grucy_f32_bits(shift));
    float s = grucy_f32_from_bits((uint32_t)(ni + 127) << 23);
    return s * grucy_expm1_reduced_f(r) + (s - 1.0f);
}

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

static inline float grucy_sigmoid_f(float a) { return 1.0f / (1.0f + grucy_exp_f(-a)); }
static inline double grucy_sigmoid_d(double a) { return 1.0 / (1.0 + grucy_exp_d(-a)); }

static inline float grucy_tanh_f(float a) {
    float u = grucy_expm1_neg_f(-2.0f * fabsf(a));
    return copysignf(-u / (2.0f + u), a);
}

static inline double grucy_tanh_d(double a) {
    double u = grucy_expm1_neg_d(-2.0 * fabs(a));
    return copysign(-u / (2.0 + u), a);
}

#endif
