# cython: language_level=3
"""Point functions for the gate math: logistic sigmoid and tanh on the fused type `real`.

They are `inline` so that the per-row gate loops in _gru.pyx can be fused and vectorised by
the C compiler around them.
"""
from libc.math cimport expf, exp, tanhf, tanh

from grucy._blas cimport real


cdef inline real sigmoid(real a) noexcept nogil:
    # 1 / (1 + e^-a): for a -> -inf, e^-a overflows to inf and the result is a correct 0;
    # for a -> +inf it is 1. Relative error stays within a few ulp of libm's exp.
    if real is float:
        return (<float>1) / ((<float>1) + expf(-a))
    else:
        return 1.0 / (1.0 + exp(-a))


cdef inline real tanh_(real a) noexcept nogil:
    if real is float:
        return tanhf(a)
    else:
        return tanh(a)
