"""cmake/check_symbols.py: the build's stand-in for linking the CUDA ops to the kernels.

Without a CUDA torch the two are compiled but never linked, so this script is what stops an op
that calls a launcher no .cu file instantiates (which would build, then fail to import on a GPU).
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "cmake" / "check_symbols.py"

pytestmark = pytest.mark.skipif(not (shutil.which("g++") and shutil.which("nm")),
                                reason="needs g++ and nm")  # fmt: skip

CALLER = """
namespace dynbatch { template <typename T> int launch(const T*); }
int call_float(const float* x) { return dynbatch::launch(x); }
int call_double(const double* x) { return dynbatch::launch(x); }
"""


def _object(tmp_path: Path, name: str, source: str) -> str:
    (tmp_path / f"{name}.cpp").write_text(source)
    subprocess.run(["g++", "-c", f"{name}.cpp", "-o", f"{name}.o"], cwd=tmp_path, check=True)
    return str(tmp_path / f"{name}.o")


def _check(needing: str, defining: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), needing, "--", needing, defining],
                          capture_output=True, text=True)  # fmt: skip


def _kernels(types: str) -> str:
    return ("namespace dynbatch { template <typename T> int launch(const T*) { return 0; }\n"
            + "".join(f"template int launch<{t}>(const {t}*);\n" for t in types.split()) + "}")  # fmt: skip


def test_a_launcher_no_kernel_instantiates_fails_naming_it(tmp_path):
    caller = _object(tmp_path, "caller", CALLER)
    result = _check(caller, _object(tmp_path, "kernels", _kernels("float")))
    assert result.returncode == 1
    assert "dynbatch::launch<double>(double const*)" in result.stderr
    assert "launch<float>" not in result.stderr


def test_every_launcher_instantiated_passes(tmp_path):
    caller = _object(tmp_path, "caller", CALLER)
    result = _check(caller, _object(tmp_path, "kernels", _kernels("float double")))
    assert result.returncode == 0, result.stderr
    assert "2 dynbatch:: symbols" in result.stdout
