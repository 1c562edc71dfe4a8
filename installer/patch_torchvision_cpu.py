"""Make PyPI's torchvision importable beside a CPU-only torch wheel (CPU bundle build venv only).

PyPI's torchvision wheels carry C++ ops (``torchvision/_C.so``) linked against the CUDA torch
build; beside torch's CPU wheel they cannot load. torchvision copes with that for every op
(``_has_ops()`` is False and the pure-Python fallbacks, e.g. ``roi_align``, are used) except
two fake-kernel registrations (``nms``, ``qnms``) in ``_meta_registrations.py`` that run
unconditionally and make ``import torchvision`` fail. This script, run by
``installer/build.sh --variant cpu`` on the throw-away build venv:

1. removes ``_C.so`` (it can never load there, and PyInstaller would chase its CUDA libraries),
2. guards those two registrations the way torchvision guards the others.

CARE Viewer uses only torchvision's pure-Python parts (transforms v2 in transformers' image
processors, timm's layers, the ``roi_align`` fallback in SAM3's geometry encoder); ``nms`` and
the other compiled ops raise torchvision's own "ops not available" error in the CPU bundle.
Idempotent.
"""
from __future__ import annotations

import sys
from pathlib import Path

MARKER = "# care-viewer cpu patch"
GUARD = f'''
{MARKER}: register fake kernels only when the compiled ops loaded (see installer/)
def _register_fake_if_ops(qualname):
    def wrapper(fn):
        if torchvision.extension._has_ops():
            return torch.library.register_fake(qualname)(fn)
        return fn

    return wrapper

'''


def patch(site_packages: Path) -> list[str]:
    tv = site_packages / "torchvision"
    done: list[str] = []
    for lib in tv.glob("_C*.so"):
        lib.unlink()
        done.append(f"removed {lib.name}")
    meta = tv / "_meta_registrations.py"
    src = meta.read_text()
    if MARKER not in src:
        anchor = "\n\n@register_meta("
        if anchor not in src:
            raise SystemExit(f"{meta}: unexpected layout, cannot patch (torchvision version?)")
        src = src.replace(anchor, "\n" + GUARD + anchor.lstrip("\n"), 1)
        n = src.count('@torch.library.register_fake("torchvision::')
        src = src.replace('@torch.library.register_fake("torchvision::', '@_register_fake_if_ops("torchvision::')
        meta.write_text(src)
        for pyc in (tv / "__pycache__").glob("_meta_registrations*.pyc"):
            pyc.unlink()
        done.append(f"guarded {n} fake-kernel registrations")
    return done


if __name__ == "__main__":
    for line in patch(Path(sys.argv[1])) or ["already patched"]:
        print(f"patch_torchvision_cpu: {line}")
