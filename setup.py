"""Build the grucy extensions against OpenBLAS from the scipy-openblas32 wheel.

Portable by default: -O3 without -march=native, and no -ffast-math anywhere (at link time it
would turn on flush-to-zero for the whole process). GRUCY_DEBUG=1 at build time turns on
bounds, wraparound and initialisation checks in every module without touching the source.
"""
import os

import numpy as np
import scipy_openblas32
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("GRUCY_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
}

# No rpath: it would point into pip's temporary build environment. grucy/__init__.py loads
# the runtime copy of libscipy_openblas.so before importing these modules (DESIGN §4).
blas = dict(
    include_dirs=[scipy_openblas32.get_include_dir(), np.get_include()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O3"] + (["-O0", "-g"] if DEBUG else []),
)

extensions = [
    Extension("grucy._gru", ["grucy/_gru.pyx"], **blas),
    Extension("grucy._ops", ["grucy/_ops.pyx"], **blas),
    # benchmarks/run.py times the kernels' GEMM sequence alone with this (the GEMM floor)
    Extension("grucy._floor", ["grucy/_floor.pyx"], **blas),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
