"""Package-wide rules: runnable docstring examples, and what imaging may import."""

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import portal.imaging

MODULES = sorted(
    f"portal.imaging.{info.name}" for info in pkgutil.iter_modules(portal.imaging.__path__)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_imports_stay_inside_imaging_and_are_light():
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in MODULES)
        + "print('\\n'.join(sorted(sys.modules)))\n"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    forbidden = {"dash", "flask", "sqlalchemy", "vtk", "vtkmodules", "nilearn"}
    assert not forbidden & {name.split(".")[0] for name in loaded}
    outside = {
        name
        for name in loaded
        if name.startswith("portal.") and not name.startswith("portal.imaging")
    }
    assert outside == set()
