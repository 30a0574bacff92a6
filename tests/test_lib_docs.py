"""Every public library function and method has a docstring; no numpy matrix products in the
library's training path (grucy's BLAS only: two BLAS thread pools fight; README, "Kernels")."""
import inspect
import pathlib
import re

import pytest

from grucy import init, interop, io, layers, losses, models, optim

MODULES = [layers, models, losses, optim, init, io, interop]


def _public_callables():
    for mod in MODULES:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj
            if inspect.isclass(obj):
                for mname, member in inspect.getmembers(obj):
                    if not mname.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                        yield f"{mod.__name__}.{name}.{mname}", member


@pytest.mark.parametrize("qualname,obj", list(_public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_has_docstring(qualname, obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 15, f"{qualname} needs a docstring"


@pytest.mark.parametrize("mod", [layers, models, losses, optim, io])
def test_no_numpy_matrix_products_in_training_path(mod):
    src = pathlib.Path(mod.__file__).read_text()
    code = "\n".join(line.split("#")[0] for line in src.splitlines())  # drop comments
    code = re.sub(r'""".*?"""', "", code, flags=re.S)  # and docstrings
    for pattern in (r"\s@\s", r"np\.dot\(", r"np\.matmul\(", r"\.dot\(", r"einsum", r"tensordot", r"np\.inner\("):
        assert not re.search(pattern, code), f"{mod.__name__} uses {pattern}: use grucy.matmul"
