"""Re-export of ``app.devtools.tiny_models`` (the tiny checkpoint writer lives there so that
benchmarks, the installer build and the self-test need nothing from ``tests``).

    python tests/tiny_models.py [--out DIR] [--force]      (same as python -m app.devtools.tiny_models)
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # `python tests/tiny_models.py` from anywhere: put the checkout on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.devtools.tiny_models import *  # noqa: E402,F401,F403
from app.devtools.tiny_models import TINY_INTERNVL_DIR, TINY_SIZES, ensure_tiny_models, main  # noqa: E402,F401

if __name__ == "__main__":
    raise SystemExit(main())
