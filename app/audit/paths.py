"""Where the audit trail lives: one SQLite file in the user's data directory."""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "care-viewer"
APP_AUTHOR = "CARE"
DB_NAME = "audit.sqlite3"
ENV_DATA_DIR = "CARE_DATA_DIR"  # tests and portable installs point this elsewhere


def data_dir() -> Path:
    """``$CARE_DATA_DIR`` or the platform's per-user data folder (not created here)."""
    override = os.environ.get(ENV_DATA_DIR)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, APP_AUTHOR))


def default_db_path() -> Path:
    return data_dir() / DB_NAME
