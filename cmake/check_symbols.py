"""Fails the build when the CUDA op layer needs a dynbatch:: symbol that nothing defines.

Without a CUDA torch, the .cu kernels and csrc/ops/cuda are compiled but never linked together,
and a shared module links even with undefined symbols: a launcher that the ops call but the
kernels never instantiate would show up only on a GPU machine, as an ImportError. This compares
the object files' symbol tables instead.

usage: check_symbols.py NEEDING_OBJECT... -- DEFINING_OBJECT...
"""
import re
import subprocess
import sys

SYMBOL_LINE = re.compile(r"^\s*(?:[0-9a-fA-F]+\s+)?[A-Za-z?]\s+(.+)$")


def symbols(paths: list[str], which: str) -> set[str]:
    out = subprocess.run(["nm", "-C", f"--{which}-only", *paths], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    # Symbol lines are "[address] TYPE name" (names have spaces); "file.o:" headers are not.
    return {m[1] for line in out.splitlines() if (m := SYMBOL_LINE.match(line))}


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    needing, defining = argv[:cut], argv[cut + 1:]
    needed = {s for s in symbols(needing, "undefined") if "dynbatch::" in s}
    missing = sorted(needed - symbols(defining, "defined"))
    if missing:
        print("The CUDA ops call dynbatch:: symbols that no kernel or op file defines, so the module "
              "would fail to load on a GPU machine:", *missing, sep="\n  ", file=sys.stderr)
        print("Instantiate them in the .cu files, or stop calling them (e.g. a dispatch over a "
              "dtype the kernels lack).", file=sys.stderr)
        return 1
    print(f"check_symbols: the {len(needed)} dynbatch:: symbols the CUDA ops need are all defined")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
