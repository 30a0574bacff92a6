# cython: language_level=3
"""The Adam and AdamW update as one compiled pass over a parameter, GIL released.

Notation (grucy/optim.py's docstring; grucy.reference.adam_update is the numpy twin)
-----------------------------------------------------------------------------------
    p, g, m, v    parameter, gradient, first and second moments: flat (n,) views, one dtype
    b1, b2        betas;  t the parameter's step count;  wd weight decay;  lr the rate
    R(c)          the Python float c rounded to the arrays' dtype, as numpy rounds a scalar
                  before it operates with a float32 array

    AdamW only  (0) p = p · R(1 − lr·wd)
    Adam only   (0) g = g + R(wd) · p
                (1) m = m · R(b1) + R(1 − b1) · g
                (2) v = v · R(b2) + (R(1 − b2) · g) · g
                (3) d = sqrt(v) / R(sqrt(1 − b2^t)) + R(eps)
                (4) p = p − (R(lr / (1 − b1^t)) · m) / d

Why compiled: numpy runs each line as separate passes with temporaries, twelve calls per
parameter, and for a small model those calls, not the arithmetic, were the step's cost.
Every operation is the one numpy does, in numpy's order, each rounded to the dtype (no
fused multiply-add: setup.py builds this module with -ffp-contract=off; sqrt and division
are IEEE-exact in both), so a step gives numpy's bits exactly (tests/test_lib_optim.py).
"""
from libc.math cimport sqrt, sqrtf

ctypedef fused real:
    float
    double


cdef void _adam(Py_ssize_t n, real *p, const real *g, real *m, real *v, real c1, real c2,
                real rb1, real rb2, real rs, real rq, real re, real rl, real rk, bint decay,
                bint decoupled) noexcept nogil:
    """(0) to (4) over n elements: plain pointers and no call in the loop, so that gcc
    vectorises it (sqrt inline needs -fno-math-errno, set in setup.py)."""
    cdef Py_ssize_t i
    cdef real gi, mi, vi, d
    for i in range(n):
        gi = g[i]
        if decoupled:
            p[i] = p[i] * rk                                           # (0) AdamW
        if decay:
            gi = gi + rl * p[i]                                        # (0) Adam
        mi = m[i] * rb1 + c1 * gi                                      # (1)
        vi = v[i] * rb2 + (c2 * gi) * gi                               # (2)
        m[i] = mi
        v[i] = vi
        if real is float:
            d = sqrtf(vi) / rq + re                                    # (3)
        else:
            d = sqrt(vi) / rq + re
        p[i] = p[i] - (rs * mi) / d                                    # (4)


def adam_update(real[::1] p, const real[::1] g, real[::1] m, real[::1] v, double b1,
                double b2, double step_size, double bias2_sqrt, double eps, double l2,
                double shrink):
    """One Adam step of p, m and v in place from g: (0) to (4) above.

    step_size = lr / (1 − b1^t) and bias2_sqrt = sqrt(1 − b2^t), computed by the caller in
    double as the numpy formula did; l2 is Adam's weight decay (0: none; skipped, not
    added as 0 · p, which is NaN where p is infinite), shrink AdamW's 1 − lr·wd (1: none).
    """
    cdef Py_ssize_t n = p.shape[0]
    if g.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError(f"adam_update: p, g, m and v must have one length, got "
                         f"{(p.shape[0], g.shape[0], m.shape[0], v.shape[0])}")
    if n == 0:                          # no element 0 to point at
        return
    with nogil:
        _adam(n, &p[0], &g[0], &m[0], &v[0], <real>(1.0 - b1), <real>(1.0 - b2), <real>b1,
              <real>b2, <real>step_size, <real>bias2_sqrt, <real>eps, <real>l2, <real>shrink,
              l2 != 0, shrink != 1)
