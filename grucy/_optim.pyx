# cython: language_level=3
"""The optimizers' updates as one compiled pass over a parameter, GIL released.

Notation (grucy/optim.py's docstring; grucy.reference has the numpy twins, numbered alike)
-----------------------------------------------------------------------------------------
    p, g          parameter and gradient: flat (n,) views, one dtype; buffers likewise
    lr, wd        the rate and the weight decay;  t the parameter's step count from 1
    R(c)          the Python float c rounded to the arrays' dtype, as numpy rounds a scalar
                  before it operates with a float32 array

    Adam (m, v; b1, b2)
        AdamW only  (0) p = p · R(1 − lr·wd)
        Adam only   (0) g = g + R(wd) · p
                    (1) m = m · R(b1) + R(1 − b1) · g
                    (2) v = v · R(b2) + (R(1 − b2) · g) · g
        amsgrad     (2') w = max(w, v), NaN if either is (np.maximum's and torch.maximum's);
                         w replaces v in (3)
                    (3) d = sqrt(v) / R(sqrt(1 − b2^t)) + R(eps)
                    (4) p = p − (R(lr / (1 − b1^t)) · m) / d
    SGD (b, the momentum buffer; mu, dampening)
                    (0) g = g + R(wd) · p
        momentum    (1) b = g on the first step, else b · R(mu) + R(1 − dampening) · g
                    (2) g = g + R(mu) · b (nesterov), else g = b
                    (3) p = p − R(lr) · g
    RMSprop (v; a = alpha; centered: c; momentum: b, mu)
                    (0) g = g + R(wd) · p
                    (1) v = v · R(a) + (R(1 − a) · g) · g
        centered    (2) c = c · R(a) + R(1 − a) · g;   d = sqrt(max(v − c · c, 0)) + R(eps)
                        (v ≥ c · c in exact arithmetic, v a mean of g² and c of g; rounding
                        under a constant g, or a loaded state, can make v − c · c negative,
                        where torch's d is NaN. A NaN stays NaN, as in np.maximum)
        else        (2) d = sqrt(v) + R(eps)
        momentum    (3) b = b · R(mu) + g / d;   p = p − R(lr) · b
        else        (3) p = p − (R(lr) · g) / d

Why compiled: numpy runs each line as separate passes with temporaries, five to twelve calls
per parameter, and for a small model those calls, not the arithmetic, were the step's cost.
Every operation is the one numpy does, in numpy's order, each rounded to the dtype (no
fused multiply-add: setup.py builds this module with -ffp-contract=off; sqrt and division
are IEEE-exact in both), so a step gives numpy's bits exactly (tests/test_lib_optim.py).
Steps skipped in numpy (wd = 0, a first momentum step) are skipped here too: 0 · p is NaN
where p is infinite.

The loops run through plain pointers; sqrt is one instruction, not a libm call per element
(-fno-math-errno, setup.py: 3.8x faster at a million elements). gcc does not vectorise them
(their branches on the flags), and need not: Adam with a branch-free body, which gcc did
vectorise, gave the same bits and the same time in benchmarks/optim.py, 939 µs at a million
parameters against 905 and 961 for this loop in two runs (the step streams its four arrays
through memory), and 68 against 64 and 65 at 53 121.
"""
from libc.math cimport sqrt, sqrtf
from libc.stdint cimport uintptr_t

ctypedef fused real:
    float
    double


cdef inline bint _overlap(const void *p, const void *g, Py_ssize_t nbytes) noexcept nogil:
    """Whether p and g, nbytes each, share memory. Each pass reads g[i] after writing
    p[i - 1], so a gradient one element along its parameter's memory (buf[:n], buf[1:]) read
    updated values: the updates copy such a g first (a pointer compare here, where numpy's
    may_share_memory in Python cost 0.3 us a parameter on every step). The addresses are
    compared as integers: C leaves `<` between pointers into two different arrays, the usual
    case, undefined (ASan's pointer-compare check reported every such step)."""
    cdef uintptr_t a = <uintptr_t>p
    cdef uintptr_t b = <uintptr_t>g
    return a < b + <uintptr_t>nbytes and b < a + <uintptr_t>nbytes


cdef inline real _sqrt(real x) noexcept nogil:
    """sqrt in the arrays' dtype (numpy's np.sqrt on them)."""
    if real is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void _adam(Py_ssize_t n, real *p, const real *g, real *m, real *v, real *w,
                       real c1, real c2, real rb1, real rb2, real rs, real rq, real re, real rl,
                       real rk, bint decay, bint decoupled, bint amsgrad) noexcept nogil:
    """Adam's (0) to (4) over n elements (w: AMSGrad's running maximum of v, or NULL).

    Inline, and called with amsgrad a constant (adam_update): a third flag tested in the
    loop left gcc's loop unswitching behind, and the loop unvectorised took 1.5-3.7x the
    time of the one without it (benchmarks/optim.py)."""
    cdef Py_ssize_t i
    cdef real gi, mi, vi, wi, d
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
        if amsgrad:
            wi = w[i]
            # a NaN in w stays: neither test is true for it. A select, not an if, and |
            # not or (no short circuit): the loop then vectorises (2.9x faster, 1M floats)
            wi = vi if (vi > wi) | (vi != vi) else wi
            w[i] = wi                                                  # (2')
            vi = wi
        d = _sqrt(vi) / rq + re                                        # (3)
        p[i] = p[i] - (rs * mi) / d                                    # (4)


def adam_update(real[::1] p, const real[::1] g, real[::1] m, real[::1] v, double b1,
                double b2, double step_size, double bias2_sqrt, double eps, double l2,
                double shrink, real[::1] w=None):
    """One Adam step of p, m and v (and w, AMSGrad's maximum of v, when not None) in place
    from g: (0) to (4) above.

    step_size = lr / (1 − b1^t) and bias2_sqrt = sqrt(1 − b2^t), computed by the caller in
    double as the numpy formula did; l2 is Adam's weight decay (0: none; skipped, not
    added as 0 · p, which is NaN where p is infinite), shrink AdamW's 1 − lr·wd (1: none).
    """
    cdef Py_ssize_t n = p.shape[0]
    cdef bint amsgrad = w is not None
    if g.shape[0] != n or m.shape[0] != n or v.shape[0] != n or (amsgrad and w.shape[0] != n):
        raise ValueError(f"adam_update: p, g, m, v (and w) must have one length, got "
                         f"{(p.shape[0], g.shape[0], m.shape[0], v.shape[0])}"
                         + (f" and {w.shape[0]}" if amsgrad else ""))
    if n == 0:                          # no element 0 to point at
        return
    if _overlap(&p[0], &g[0], n * sizeof(real)):
        g = g.copy()                    # (a copy of p itself gives the same step)
    with nogil:
        if amsgrad:
            _adam(n, &p[0], &g[0], &m[0], &v[0], &w[0], <real>(1.0 - b1), <real>(1.0 - b2),
                  <real>b1, <real>b2, <real>step_size, <real>bias2_sqrt, <real>eps, <real>l2,
                  <real>shrink, l2 != 0, shrink != 1, True)
        else:
            _adam(n, &p[0], &g[0], &m[0], &v[0], NULL, <real>(1.0 - b1), <real>(1.0 - b2),
                  <real>b1, <real>b2, <real>step_size, <real>bias2_sqrt, <real>eps, <real>l2,
                  <real>shrink, l2 != 0, shrink != 1, False)


cdef void _sgd(Py_ssize_t n, real *p, const real *g, real *b, real rl, real rmu, real rd,
               real rw, bint decay, bint momentum, bint first, bint nesterov) noexcept nogil:
    """SGD's (0) to (3) over n elements."""
    cdef Py_ssize_t i
    cdef real gi, bi
    for i in range(n):
        gi = g[i]
        if decay:
            gi = gi + rw * p[i]                                        # (0)
        if momentum:
            bi = gi if first else b[i] * rmu + rd * gi                 # (1)
            b[i] = bi
            gi = gi + rmu * bi if nesterov else bi                     # (2)
        p[i] = p[i] - rl * gi                                          # (3)


def sgd_update(real[::1] p, const real[::1] g, real[::1] b, double lr, double momentum,
               double dampening, bint nesterov, double wd, bint first):
    """One SGD step of p (and b, the momentum buffer, when momentum != 0; b may be None
    otherwise) in place from g: (0) to (3) above; first: b is set to g, not updated."""
    cdef Py_ssize_t n = p.shape[0]
    cdef bint moves = momentum != 0
    if g.shape[0] != n or (moves and (b is None or b.shape[0] != n)):
        raise ValueError(f"sgd_update: p, g and the momentum buffer must have one length, got "
                         f"{(p.shape[0], g.shape[0], None if b is None else b.shape[0])}")
    if n == 0:
        return
    if _overlap(&p[0], &g[0], n * sizeof(real)):
        g = g.copy()
    with nogil:
        _sgd(n, &p[0], &g[0], &b[0] if moves else NULL, <real>lr, <real>momentum,
             <real>(1.0 - dampening), <real>wd, wd != 0, moves, first, nesterov)


cdef void _rmsprop(Py_ssize_t n, real *p, const real *g, real *v, real *c, real *b, real rl,
                   real ra, real rc, real re, real rw, real rmu, bint decay, bint centered,
                   bint momentum) noexcept nogil:
    """RMSprop's (0) to (3) over n elements."""
    cdef Py_ssize_t i
    cdef real gi, vi, ci, d, bi
    for i in range(n):
        gi = g[i]
        if decay:
            gi = gi + rw * p[i]                                        # (0)
        vi = v[i] * ra + (rc * gi) * gi                                # (1)
        v[i] = vi
        if centered:
            ci = c[i] * ra + rc * gi                                   # (2)
            c[i] = ci
            vi = vi - ci * ci
            if vi < 0:                  # a NaN stays: the test is false for it
                vi = 0
        d = _sqrt(vi) + re
        if momentum:
            bi = b[i] * rmu + gi / d                                   # (3)
            b[i] = bi
            p[i] = p[i] - rl * bi
        else:
            p[i] = p[i] - (rl * gi) / d


def rmsprop_update(real[::1] p, const real[::1] g, real[::1] v, real[::1] c, real[::1] b,
                   double lr, double alpha, double eps, double wd, double momentum):
    """One RMSprop step of p, v (and c when centered, b when momentum > 0; None otherwise)
    in place from g: (0) to (3) above."""
    cdef Py_ssize_t n = p.shape[0]
    cdef bint centered = c is not None, moves = momentum > 0
    if (g.shape[0] != n or v.shape[0] != n or (centered and c.shape[0] != n)
            or (moves and (b is None or b.shape[0] != n))):
        raise ValueError("rmsprop_update: p, g and the buffers in use must have one length")
    if n == 0:
        return
    if _overlap(&p[0], &g[0], n * sizeof(real)):
        g = g.copy()
    with nogil:
        _rmsprop(n, &p[0], &g[0], &v[0], &c[0] if centered else NULL,
                 &b[0] if moves else NULL, <real>lr, <real>alpha, <real>(1.0 - alpha),
                 <real>eps, <real>wd, <real>momentum, wd != 0, centered, moves)
