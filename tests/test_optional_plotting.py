"""matplotlib is an optional extra ([plot]): the library never needs it, and the applications'
plots, asked for without it, fail at once with a message that says how to install it."""
from __future__ import annotations

import subprocess
import sys

# A Python in which `import matplotlib` fails, as where the extra is not installed.
WITHOUT_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None\n"


def run_without_matplotlib(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_MATPLOTLIB + code], cwd=cwd,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_the_library_needs_no_matplotlib(tmp_path):
    done = run_without_matplotlib(
        "import dynbatch_ext, numpy as np, torch\n"
        "from dynbatch_ext.nn import ESIM\n"
        "batches = dynbatch_ext.plan_batches(np.arange(1, 50), 4000)\n"
        "assert sorted(int(i) for b in batches for i in b) == list(range(49))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "print('ok')\n", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_train_esim_without_matplotlib_says_what_to_install_before_training(tmp_path):
    command = ("from dynbatch_ext.cli import main\n"
               "sys.exit(main(['train-esim', '--out', 'run', '--epochs', '1', '--synthetic-size', '60',"
               " '--embedding-dim', '4', '--hidden-size', '4', '--no-progress'{}]))\n")  # fmt: skip
    done = run_without_matplotlib(command.format(""), tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    message = done.stderr.strip()
    assert message.startswith("error: train-esim's training.png needs matplotlib"), message
    assert "pip install 'dynbatch_ext[plot]'" in message and "--no-plot" in message
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # it stopped before training
    done = run_without_matplotlib(command.format(", '--no-plot'"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert not (tmp_path / "run" / "training.png").exists()


def test_bench_without_matplotlib_says_what_to_install_before_measuring(tmp_path):
    done = run_without_matplotlib(
        "from dynbatch_ext.cli import main\n"
        "sys.exit(main(['bench', '--tiny', '--sections', 'batching', '--out', 'results']))\n", tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "error: bench (its plots) needs matplotlib" in done.stderr
    assert "pip install 'dynbatch_ext[plot]'" in done.stderr
    assert not (tmp_path / "results").exists()
