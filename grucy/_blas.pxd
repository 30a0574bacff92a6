# cython: language_level=3
"""The one place grucy names BLAS: OpenBLAS from the scipy-openblas32 wheel.

Every wrapper is `noexcept nogil`, takes row-major (C-order) operands and dispatches on the
fused type `real` to the s- or d- routine at compile time. Kernels cimport from here only.

The wheel prefixes its symbols (`scipy_cblas_sgemm`, ...) so that it can sit in one process
beside numpy's own OpenBLAS without either stealing the other's symbols.
"""

cdef extern from "_exit.h" nogil:
    # the calls in flight, which interpreter exit waits for (grucy/_exit.h): enter just
    # before `with nogil:`, leave as the last statement inside it
    void grucy_call_enter()
    void grucy_call_leave()
    int grucy_exit_guard()

ctypedef fused real:
    float
    double

cdef extern from "cblas.h" nogil:
    ctypedef enum CBLAS_ORDER:
        CblasRowMajor
        CblasColMajor
    ctypedef enum CBLAS_TRANSPOSE:
        CblasNoTrans
        CblasTrans

    void scipy_cblas_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                           int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc)
    void scipy_cblas_dgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                           int m, int n, int k, double alpha, const double *a, int lda,
                           const double *b, int ldb, double beta, double *c, int ldc)

    void scipy_cblas_sgemv(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, int m, int n, float alpha,
                           const float *a, int lda, const float *x, int incx, float beta,
                           float *y, int incy)
    void scipy_cblas_dgemv(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, int m, int n, double alpha,
                           const double *a, int lda, const double *x, int incx, double beta,
                           double *y, int incy)

    void scipy_openblas_set_num_threads(int num_threads)
    int scipy_openblas_get_num_threads()
    ctypedef void (*openblas_dojob_callback)(int thread_num, void *jobdata, int dojob_data)
    ctypedef void (*openblas_threads_callback)(int sync, openblas_dojob_callback dojob,
                                               int numjobs, size_t jobdata_elsize,
                                               void *jobdata, int dojob_data)
    void scipy_openblas_set_threads_callback_function(openblas_threads_callback callback)
    int scipy_openblas_get_num_procs()
    char* scipy_openblas_get_config()
    char* scipy_openblas_get_corename()


# ---- level 2 ------------------------------------------------------------------------------

cdef inline void gemv(bint trans_a, int m, int n, real alpha, const real *a, int lda,
                      const real *x, int incx, real beta, real *y, int incy) noexcept nogil:
    """y := alpha * op(A) @ x + beta * y, row-major A (m, n); y has m (or n if trans_a) entries."""
    cdef CBLAS_TRANSPOSE ta = CblasTrans if trans_a else CblasNoTrans
    if real is float:
        scipy_cblas_sgemv(CblasRowMajor, ta, m, n, alpha, a, lda, x, incx, beta, y, incy)
    else:
        scipy_cblas_dgemv(CblasRowMajor, ta, m, n, alpha, a, lda, x, incx, beta, y, incy)


# ---- level 3 ------------------------------------------------------------------------------

cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      real alpha, const real *a, int lda,
                      const real *b, int ldb,
                      real beta, real *c, int ldc) noexcept nogil:
    """C := alpha * op(A) @ op(B) + beta * C, row-major; C is (m, n), op(A) (m, k), op(B) (k, n).

    A one-row product (m == 1: a single batch row, every streaming step) goes to gemv:
    OpenBLAS's gemm packs all of op(B) on every call, which for B = W_hh (3H, H) cost
    ~10x the arithmetic (measured: 84 µs vs ~10 µs per step at H = 256).
    """
    cdef CBLAS_TRANSPOSE ta = CblasTrans if trans_a else CblasNoTrans
    cdef CBLAS_TRANSPOSE tb = CblasTrans if trans_b else CblasNoTrans
    if m == 1:
        # c (n,) = op(B)ᵀ a: B stored (n, k) when trans_b, else (k, n); a's k entries are
        # contiguous unless A is stored transposed (k, 1) with leading dimension lda.
        if trans_b:
            gemv(False, n, k, alpha, b, ldb, a, lda if trans_a else 1, beta, c, 1)
        else:
            gemv(True, k, n, alpha, b, ldb, a, lda if trans_a else 1, beta, c, 1)
        return
    if real is float:
        scipy_cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    else:
        scipy_cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)


# ---- thread pool and build information ----------------------------------------------------

cdef inline void set_num_threads(int n) noexcept nogil:
    scipy_openblas_set_num_threads(n)

cdef inline int get_num_threads() noexcept nogil:
    return scipy_openblas_get_num_threads()

cdef inline void use_threads_callback(openblas_threads_callback run) noexcept nogil:
    """Have OpenBLAS hand the jobs of each parallel call to `run` instead of its own
    threads (grucy registers its pool, grucy/_pool.h)."""
    scipy_openblas_set_threads_callback_function(run)

cdef inline int get_num_procs() noexcept nogil:
    return scipy_openblas_get_num_procs()

cdef inline const char* get_config() noexcept nogil:
    return scipy_openblas_get_config()

cdef inline const char* get_corename() noexcept nogil:
    return scipy_openblas_get_corename()
