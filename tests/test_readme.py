"""Every code block of README.md runs, as pasted, so that no example can fail for its reader.

Each block carries a marker on the line before it that says how it is run here:
  <!-- readme-test: SETUP -->          a python block, run after tests/readme_setups.SETUPS[SETUP]
                                       (tiny stand-ins for the reader's own model and data)
  <!-- readme-test: run-cli ARGS -->   a bash block of `python -m dynbatch_ext` / `torchrun`
                                       lines, each run with ARGS appended (a tiny model)
  <!-- readme-test: covered-by WHAT --> run by WHAT: a script, or a test (path::function)
A block without a marker fails the test: say how it is checked.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from readme_setups import SETUPS

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>.*?) -->\n)?```(?P<language>\w*)\n(?P<code>.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str, str, int]]:
    """(marker, language, code, line) of every python and bash block (a `text` block is not code)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(m["marker"] or "", m["language"], m["code"], text[: m.start()].count("\n") + 1)
            for m in BLOCK.finditer(text) if m["language"] != "text"]  # fmt: skip


BLOCKS = readme_blocks()


def test_every_block_says_how_it_is_checked():
    unmarked = [line for marker, _, _, line in BLOCKS if not marker]
    assert not unmarked, f"README code blocks at lines {unmarked} have no <!-- readme-test: ... --> marker"
    for marker, language, _, line in BLOCKS:
        kind = marker.split()[0]
        if kind == "covered-by":
            what = marker.split(maxsplit=1)[1]
            path, _, function = what.partition("::")
            assert (ROOT / path).is_file(), f"line {line}: {path} does not exist"
            if function:
                assert f"def {function}(" in (ROOT / path).read_text(), f"line {line}: no {what}"
        elif kind != "run-cli":
            assert language == "python" and kind in SETUPS, f"line {line}: unknown marker {marker!r}"


@pytest.mark.parametrize("marker, code, line", [(m, c, n) for m, lang, c, n in BLOCKS if m.split()[0] in SETUPS],
                         ids=lambda value: f"line{value}" if isinstance(value, int) else "")  # fmt: skip
def test_python_block_runs(marker, code, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    namespace = {"__name__": "__readme__"}
    namespace.update(SETUPS[marker]())
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102


def _cli_lines(code: str, extra: str) -> list[list[str]]:
    commands = []
    for raw in code.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line.replace("../shared", str(ROOT.parent / "shared")))
        if words[0] == "python":
            words[0] = sys.executable
        elif words[0] == "torchrun":
            words[:1] = [sys.executable, "-m", "torch.distributed.run"]
        commands.append(words + shlex.split(extra))
    return commands


@pytest.mark.parametrize("marker, code, line", [(m, c, n) for m, lang, c, n in BLOCKS if m.startswith("run-cli")],
                         ids=lambda value: f"line{value}" if isinstance(value, int) else "")  # fmt: skip
def test_command_block_runs(marker, code, line, tmp_path):
    for command in _cli_lines(code, marker.split(maxsplit=1)[1]):
        if any("snli" in word for word in command) and not (ROOT.parent / "shared" / "data").is_dir():
            continue  # the real data is not beside this clone
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        assert done.returncode == 0, f"README.md:{line}: {shlex.join(command)}\n{done.stderr[-3000:]}"
