r"""Build the grucy extensions against OpenBLAS from the scipy-openblas32 wheel.

Portable by default: -O3 without -march=native, and no -ffast-math anywhere (at link time it
would turn on flush-to-zero for the whole process). GRUCY_DEBUG=1 at build time turns on
bounds, wraparound and initialisation checks in every module without touching the source.

An AddressSanitizer + UBSan copy, as the kernels were fuzzed (pytest needs -s: captured
output hides the reports; build/ and grucy/*.c must go first, or the old objects stay):

    rm -rf build grucy/*.c
    export CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
    GRUCY_DEBUG=1 LDFLAGS="-fsanitize=address,undefined" python setup.py build_ext --inplace
    LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
        ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 UBSAN_OPTIONS=print_stacktrace=1 \
        python -m pytest -s -q tests/ > /tmp/grucy-san.log 2>&1
    grep -c "ERROR: AddressSanitizer\|runtime error:" /tmp/grucy-san.log      # 0: clean

The grep is the result: UBSan reports and carries on, and the tests still pass. GRUCY_DEBUG=1
builds at -O0 (with bounds checks); a second run without it covers the -O3 loops as shipped.
Pointer compares (_optim.pyx's overlap check) need -fsanitize=address,pointer-compare
(LDFLAGS -fsanitize=address, libasan.so alone preloaded) and
detect_invalid_pointer_pairs=2:halt_on_error=0 in ASAN_OPTIONS: Cython's own memoryview
copy reports its pairs, and nothing else may. Back to a normal build: unset CFLAGS, and
remove build/ and grucy/*.c again.
"""
import os

import numpy as np
import scipy_openblas32
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("GRUCY_DEBUG", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
}

# No rpath: it would point into pip's temporary build environment. grucy/__init__.py loads
# the runtime copy of libscipy_openblas.so before importing these modules.
blas = dict(
    include_dirs=[scipy_openblas32.get_include_dir(), np.get_include()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O3"] + (["-O0", "-g"] if DEBUG else []),
    # C beside the .pyx: the point functions, the gate passes with their AVX2 and AVX-512
    # copies, the thread pool and the exit guard (an edit to any of them must rebuild the
    # modules)
    depends=["grucy/_math.h", "grucy/_gates.h", "grucy/_gates_t.h", "grucy/_pool.h",
             "grucy/_exit.h"],
)

extensions = [
    Extension("grucy._gru", ["grucy/_gru.pyx"], **blas),
    Extension("grucy._ops", ["grucy/_ops.pyx"], **blas),
    # benchmarks/run.py times the kernels' GEMM sequence alone with this (the GEMM floor)
    Extension("grucy._floor", ["grucy/_floor.pyx"], **blas),
    # the optimizers' steps; no BLAS. -ffp-contract=off: a multiply-add fused where numpy rounds
    # twice would change its bits (a CFLAGS=-march=native build could otherwise fuse);
    # -fno-math-errno: sqrt as one instruction, not a libm call that may set errno (never read)
    Extension("grucy._optim", ["grucy/_optim.pyx"], include_dirs=[np.get_include()],
              define_macros=blas["define_macros"],
              extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno"]
              + (["-O0", "-g"] if DEBUG else [])),
]



class BuildExt(build_ext):
    """gcc only: two flags for the vectoriser; other compilers get the plain flags.

    - more runtime alias checks than the default 10: the loops in _gru.pyx read several rows
      through plain pointers (Cython has no `restrict`), and at the default limit gcc gives
      up and runs them one element at a time;
    - -fno-trapping-math: lets gcc turn the float compare-and-selects of grucy/_math.h's
      float sigmoid/tanh into min/blend instructions (it otherwise keeps them as branches,
      and the gate loops do not vectorise). It only waives the exact set of floating-point
      exception flags raised; results are unchanged, and grucy never reads those flags.
    """

    def build_extensions(self):
        cc = os.path.basename(self.compiler.compiler_so[0]) if self.compiler.compiler_type == "unix" else ""
        if "gcc" in cc or cc in ("cc", "x86_64-linux-gnu-gcc"):
            for ext in self.extensions:
                ext.extra_compile_args = ext.extra_compile_args + [
                    "--param=vect-max-version-for-alias-checks=64", "-fno-trapping-math"]
        super().build_extensions()


setup(ext_modules=cythonize(extensions, compiler_directives=directives),
      cmdclass={"build_ext": BuildExt})
