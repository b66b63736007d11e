"""scripts/gpu_check.sh, the one command a GPU session runs, driven on the CPU with stand-ins for
the GPU machine's tools (nvidia-smi, compute-sanitizer, nvcc and a CUDA-built python), so that its
steps, their options and order, and its handling of failures and time limits are known to work
before device time is spent on them. The stand-in nvcc "builds" the probabilities program for the
CUDA emulator and the stand-in sanitizer runs what it is given, so that the program really runs
on the batches the script hands it."""
from __future__ import annotations

import os
import shlex
import subprocess
import tarfile

import pytest
from emulator_build import ROOT

SCRIPT = ROOT / "scripts" / "gpu_check.sh"

# Each stand-in writes one line to $CALLS: its name, its arguments, and whether the caching
# allocator was off for it.
LOG_CALL = 'printf "%s" "$(basename "$0")" >>"$CALLS"; printf " %q" "$@" >>"$CALLS"; ' \
           'echo " | no_caching=${PYTORCH_NO_CUDA_MEMORY_CACHING:-}" >>"$CALLS"'  # fmt: skip
STAND_INS = {
    "nvidia-smi": "echo 'name, driver_version, memory.total'; echo 'Stand-in GPU, 1.0, 80 GiB'",
    # python: sleeps where $SLOW names one of its arguments (a step that overruns), fails where
    # $FAIL_ON does.
    "python": 'case " $* " in *" ${SLOW:-none} "*) sleep 20 ;; esac\n'
              'case " $* " in *" ${FAIL_ON:-none} "*) exit 1 ;; esac',
    # nvcc: "builds" the program for the emulator, wherever -o says.
    "nvcc": 'while [ $# -gt 0 ]; do [ "$1" = -o ] && cp "$EMULATED_PROGRAM" "$2"; shift; done',
    # compute-sanitizer: fails with its error exit code where $FAIL_TOOL is the tool; else runs
    # the command after its own options.
    "compute-sanitizer": 'while [ "$1" != --tool ]; do shift; done; tool=$2; shift 2\n'
                         '[ "$tool" = "${FAIL_TOOL:-none}" ] && { echo "== 1 error"; exit 3; }\n'
                         'exec "$@"',
}  # fmt: skip


def run_script(tmp_path, steps, *args, program="", **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{LOG_CALL}\n{body}\n")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.txt"
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
                   "PYTHON": str(bin_dir / "python"), "EMULATED_PROGRAM": str(program),
                   "GPU_RESULTS": str(tmp_path / "results"), "ARCHIVE": str(tmp_path / "gpu.tgz"),
                   "TMPDIR": str(tmp_path), "STEPS": steps, **env}  # fmt: skip
    environment.pop("PYTORCH_NO_CUDA_MEMORY_CACHING", None)
    done = subprocess.run(["bash", str(SCRIPT), *args], env=environment, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    lines = calls.read_text().splitlines() if calls.exists() else []
    return done, [shlex.split(line.split(" | ")[0]) + [line.split(" | ")[1]] for line in lines]


def test_sanitizer_checks_our_kernels_without_the_caching_allocator(tmp_path, probs_program):
    done, calls = run_script(tmp_path, "sanitizer probs", program=probs_program, PROBS_CHECK_DIM="40")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sanitized = [c for c in calls if c[0] == "compute-sanitizer"]
    # The op tests under memcheck and racecheck, then the program on three batches under each.
    assert len(sanitized) == 2 + 6
    for call in sanitized:
        assert call[-1] == "no_caching=1"  # every tensor its own allocation
        assert call[1:5] == ["--error-exitcode", "3", "--kernel-name", "kns=dynbatch"]
    assert [c[6] for c in sanitized[:2]] == ["memcheck", "racecheck"]
    assert all("pytest" in c for c in sanitized[:2])
    program = str(tmp_path / "dynbatch_soft_align_probs")
    assert all(c[7:10] == [program, "40", "1"] for c in sanitized[2:])
    # The program really ran on each batch: the default shared memory, opted in, the workspace.
    results = tmp_path / "results"
    for case, shape in {"shared": (6, 40, 33), "optin": (4, 100, 60), "workspace": (4, 150, 150)}.items():
        for tool in ("memcheck", "racecheck"):
            log = (results / f"probs-{tool}-{case}.log").read_text()
            assert f'"batch": {shape[0]}, "max_len_a": {shape[1]}, "max_len_b": {shape[2]}' in log, log
            assert '"same_bits": true' in log
    # Timing comes last, once the program is known to be clean.
    assert calls[-1][:4] == [calls[-1][0], "-m", "dynbatch_ext.bench.tools.probs_choice", "--program"]
    with tarfile.open(tmp_path / "gpu.tgz") as archive:
        assert "./probs-racecheck-workspace.log" in archive.getnames()


def test_a_failed_or_overrunning_step_fails_the_script_but_not_the_later_steps(tmp_path):
    done, calls = run_script(tmp_path, "tests sanitizer bench", "--sections", "ops",
                             FAIL_TOOL="racecheck", SLOW="tests", STEP_TIMEOUT="1")  # fmt: skip
    assert done.returncode == 1
    assert "== tests: exit 124 (stopped after STEP_TIMEOUT=1 s)" in done.stdout
    assert "== sanitizer-memcheck: exit 0" in done.stdout
    assert "== sanitizer-racecheck: exit 3" in done.stdout
    bench = calls[-1]
    assert bench[1:6] == ["-m", "dynbatch_ext", "bench", "--device", "cuda"]
    assert bench[-3:-1] == ["--sections", "ops"]  # the script's arguments go to the benchmark


@pytest.mark.parametrize("fail_on, steps", [
    ("pip", "build tests"),  # the build failed
    ("-c", "tests"),         # the installed build has no CUDA kernels
])  # fmt: skip
def test_without_a_cuda_build_the_script_stops_at_once(tmp_path, fail_on, steps):
    done, calls = run_script(tmp_path, steps, FAIL_ON=fail_on)
    assert done.returncode == 1
    (python_call,) = [c for c in calls if c[0] == "python"]  # the failed one, and nothing after it
    assert fail_on in python_call
