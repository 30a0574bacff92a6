# cython: language_level=3
"""Point functions for the gate math: logistic sigmoid and tanh on the fused type `real`.

Why not libm: expf/tanhf are opaque calls, so a gate loop that calls them runs one element
at a time, and the gate math cost 19-64% of the GEMM time (measured when grucy was
designed). These are branch-free, straight-line C (below) that gcc inlines and vectorises
inside the gate loops (SSE2 at the portable -O3 the build uses; no -ffast-math, no
flush-to-zero).

Method (Cephes' range reduction; Cody & Waite): x = n·ln2 + r with n = round(x/ln2),
|r| <= ln2/2, ln2 split in two so n·ln2_hi is exact; expm1(r) by a minimax polynomial
(float: Cephes expf's, evaluated by Estrin's scheme for a short dependency chain) or Padé
form (double: Cephes exp's); 2^n built in the exponent bits. float only ever needs e^y
for y <= 0 (below), so one factor 2^n suffices; double builds it as two factors where n
may leave the normal range, so that overflow gives inf and underflow (sub)normals.

    sigmoid(a) = 1 / (1 + e),  or e / (1 + e) for a < 0,  e = exp(-|a|)   (float)
    sigmoid(a) = 1 / (1 + exp(-a))                                          (double)
    tanh(a)    = sign(a) · (−u) / (2 + u),  u = expm1(−2|a|)   no cancellation near 0

Accuracy against libm (tests/test_math.py states and checks the bounds): a few ulp of
the result across the whole float range, NaN in -> NaN out, ±inf -> the limits.
"""

cdef extern from "_math.h" nogil:
    float grucy_sigmoid_f(float a)
    double grucy_sigmoid_d(double a)
    float grucy_tanh_f(float a)
    double grucy_tanh_d(double a)

from grucy._blas cimport real


cdef inline real sigmoid(real a) noexcept nogil:
    """1 / (1 + e^-a)."""
    if real is float:
        return grucy_sigmoid_f(a)
    else:
        return grucy_sigmoid_d(a)


cdef inline real tanh_(real a) noexcept nogil:
    """tanh(a)."""
    if real is float:
        return grucy_tanh_f(a)
    else:
        return grucy_tanh_d(a)


# ---- the gate passes (grucy/_gates.h) ---------------------------------------------------------
# Plain C so that they can carry `restrict`, and AVX2+FMA and AVX-512 copies chosen at run
# time; see that header. Arguments: n rows of one step, H units; gate-shaped rows have
# stride 3H. The per-step passes take `parts` first: their n rows run as that many blocks at
# once on grucy's pool (grucy/_pool.h); 1 runs them on the calling thread.

cdef extern from "_gates.h" nogil:
    enum: GRUCY_SIMD_AVX512                        # the newest copy's level
    int grucy_simd_select(int most)
    int grucy_pool_init(int (*get_threads)() noexcept nogil,
                        void (*set_threads)(int) noexcept nogil)
    int grucy_pool_reserve(int n)
    int grucy_pool_threads()
    void grucy_pool_set_threads(int n)
    unsigned long grucy_pool_runs()
    unsigned long grucy_pool_nested()
    unsigned long grucy_pool_serial()
    unsigned long grucy_pool_taken()
    void grucy_pool_hold(int on)
    int grucy_pool_run(int njobs, void (*fn)(int, void *) noexcept nogil, void *arg)
    int grucy_pool_run_serial(int njobs, void (*fn)(int, void *) noexcept nogil, void *arg)
    int grucy_pool_run_gemms(int njobs, void (*fn)(int, void *) noexcept nogil, void *arg)
    void grucy_pool_blas(int sync, void (*dojob)(int, void *, int), int njobs, size_t elsize,
                         void *jobs, int data)
    void grucy_pool_blas_shared(int sync, void (*dojob)(int, void *, int), int njobs,
                                size_t elsize, void *jobs, int data)
    void grucy_pool_set_shared_top(int top)
    void grucy_after_infer_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *a,
                                 float *hp, const float *bhn, float *h, float *out)
    void grucy_after_infer_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *a,
                                 double *hp, const double *bhn, double *h, double *out)
    void grucy_after_train_par_f(int parts, Py_ssize_t n, Py_ssize_t H, float *g, const float *hp,
                                 const float *bhn, float *h, float *out)
    void grucy_after_train_par_d(int parts, Py_ssize_t n, Py_ssize_t H, double *g,
                                 const double *hp, const double *bhn, double *h, double *out)
    void grucy_seed_rz_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *a, float *rz,
                             const float *h, float *rh)
    void grucy_seed_rz_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *a, double *rz,
                             const double *h, double *rh)
    void grucy_seed_n_infer_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *a,
                                  const float *hp, float *h, float *out)
    void grucy_seed_n_infer_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *a,
                                  const double *hp, double *h, double *out)
    void grucy_seed_n_train_par_f(int parts, Py_ssize_t n, Py_ssize_t H, float *g, const float *hp,
                                  float *h, float *out)
    void grucy_seed_n_train_par_d(int parts, Py_ssize_t n, Py_ssize_t H, double *g,
                                  const double *hp, double *h, double *out)
    void grucy_back_after_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *g,
                                const float *hprev, const float *bhn, const float *dout, float *dh,
                                float *hn, float *da, float *dgs)
    void grucy_back_after_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *g,
                                const double *hprev, const double *bhn, const double *dout,
                                double *dh, double *hn, double *da, double *dgs)
    void grucy_reset_state_f(Py_ssize_t n, Py_ssize_t H, const float *g, const float *hprev,
                             float *rh)
    void grucy_reset_state_d(Py_ssize_t n, Py_ssize_t H, const double *g,
                             const double *hprev, double *rh)
    void grucy_back_seed_nz_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *g,
                                  const float *hprev, const float *dout, float *dh, float *da,
                                  float *dgs)
    void grucy_back_seed_nz_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *g,
                                  const double *hprev, const double *dout, double *dh, double *da,
                                  double *dgs)
    void grucy_back_seed_r_par_f(int parts, Py_ssize_t n, Py_ssize_t H, const float *g,
                                 const float *hprev, const float *drh, float *dh, float *da,
                                 float *dgs)
    void grucy_back_seed_r_par_d(int parts, Py_ssize_t n, Py_ssize_t H, const double *g,
                                 const double *hprev, const double *drh, double *dh, double *da,
                                 double *dgs)
    void grucy_colsum_f(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld, const float *a,
                        double *out)
    void grucy_colsum_d(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld, const double *a,
                        double *out)
    void grucy_map_sigmoid_f(Py_ssize_t n, const float *a, float *out)
    void grucy_map_sigmoid_d(Py_ssize_t n, const double *a, double *out)
    void grucy_map_tanh_f(Py_ssize_t n, const float *a, float *out)
    void grucy_map_tanh_d(Py_ssize_t n, const double *a, double *out)


cdef inline void colsum(Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t ld, const real *a,
                        double *out) noexcept nogil:
    if real is float:
        grucy_colsum_f(rows, cols, ld, a, out)
    else:
        grucy_colsum_d(rows, cols, ld, a, out)


cdef inline void after_infer(int parts, Py_ssize_t n, Py_ssize_t H, const real *a, real *hp,
                             const real *bhn, real *h, real *out) noexcept nogil:
    if real is float:
        grucy_after_infer_par_f(parts, n, H, a, hp, bhn, h, out)
    else:
        grucy_after_infer_par_d(parts, n, H, a, hp, bhn, h, out)


cdef inline void after_train(int parts, Py_ssize_t n, Py_ssize_t H, real *g, const real *hp,
                             const real *bhn, real *h, real *out) noexcept nogil:
    if real is float:
        grucy_after_train_par_f(parts, n, H, g, hp, bhn, h, out)
    else:
        grucy_after_train_par_d(parts, n, H, g, hp, bhn, h, out)


cdef inline void seed_rz(int parts, Py_ssize_t n, Py_ssize_t H, const real *a, real *rz,
                         const real *h, real *rh) noexcept nogil:
    if real is float:
        grucy_seed_rz_par_f(parts, n, H, a, rz, h, rh)
    else:
        grucy_seed_rz_par_d(parts, n, H, a, rz, h, rh)


cdef inline void seed_n_infer(int parts, Py_ssize_t n, Py_ssize_t H, const real *a, const real *hp,
                              real *h, real *out) noexcept nogil:
    if real is float:
        grucy_seed_n_infer_par_f(parts, n, H, a, hp, h, out)
    else:
        grucy_seed_n_infer_par_d(parts, n, H, a, hp, h, out)


cdef inline void seed_n_train(int parts, Py_ssize_t n, Py_ssize_t H, real *g, const real *hp,
                              real *h, real *out) noexcept nogil:
    if real is float:
        grucy_seed_n_train_par_f(parts, n, H, g, hp, h, out)
    else:
        grucy_seed_n_train_par_d(parts, n, H, g, hp, h, out)


cdef inline void back_after(int parts, Py_ssize_t n, Py_ssize_t H, const real *g,
                            const real *hprev, const real *bhn, const real *dout, real *dh,
                            real *hn, real *da, real *dgs) noexcept nogil:
    if real is float:
        grucy_back_after_par_f(parts, n, H, g, hprev, bhn, dout, dh, hn, da, dgs)
    else:
        grucy_back_after_par_d(parts, n, H, g, hprev, bhn, dout, dh, hn, da, dgs)


cdef inline void reset_state(Py_ssize_t n, Py_ssize_t H, const real *g, const real *hprev,
                             real *rh) noexcept nogil:
    if real is float:
        grucy_reset_state_f(n, H, g, hprev, rh)
    else:
        grucy_reset_state_d(n, H, g, hprev, rh)


cdef inline void back_seed_nz(int parts, Py_ssize_t n, Py_ssize_t H, const real *g,
                              const real *hprev, const real *dout, real *dh, real *da,
                              real *dgs) noexcept nogil:
    if real is float:
        grucy_back_seed_nz_par_f(parts, n, H, g, hprev, dout, dh, da, dgs)
    else:
        grucy_back_seed_nz_par_d(parts, n, H, g, hprev, dout, dh, da, dgs)


cdef inline void back_seed_r(int parts, Py_ssize_t n, Py_ssize_t H, const real *g,
                             const real *hprev, const real *drh, real *dh, real *da,
                             real *dgs) noexcept nogil:
    if real is float:
        grucy_back_seed_r_par_f(parts, n, H, g, hprev, drh, dh, da, dgs)
    else:
        grucy_back_seed_r_par_d(parts, n, H, g, hprev, drh, dh, da, dgs)


cdef inline void map_sigmoid(Py_ssize_t n, const real *a, real *out) noexcept nogil:
    if real is float:
        grucy_map_sigmoid_f(n, a, out)
    else:
        grucy_map_sigmoid_d(n, a, out)


cdef inline void map_tanh(Py_ssize_t n, const real *a, real *out) noexcept nogil:
    if real is float:
        grucy_map_tanh_f(n, a, out)
    else:
        grucy_map_tanh_d(n, a, out)
