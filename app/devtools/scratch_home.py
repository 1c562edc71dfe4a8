"""A throw-away home for scripts and benchmarks that drive the real window: their runs, audit
rows, recent questions and QSettings (under XDG_CONFIG_HOME) never reach the user's."""
from __future__ import annotations

import os
import tempfile


def use_scratch_home(prefix: str = "care-scratch-") -> str:
    """Point HOME, the XDG folders and CARE's data/config folders at a new temporary folder
    (call before Qt or the app reads them); returns that folder. The models folder is unchanged."""
    home = tempfile.mkdtemp(prefix=prefix)
    os.environ.update(HOME=home, XDG_CONFIG_HOME=f"{home}/.config", XDG_DATA_HOME=f"{home}/.local/share",
                      CARE_DATA_DIR=f"{home}/data", CARE_CONFIG_DIR=f"{home}/config")
    return home
