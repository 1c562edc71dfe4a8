"""The audit panel (composed in :mod:`app.ui.audit.panel`); this module keeps the import
path the controller uses."""
from __future__ import annotations

from app.audit.audit_view_model import LAYER_PREFIX, MaskEntry
from app.audit.present import DISCLAIMER

from .audit.masks import MaskRow
from .audit.panel import AuditPanel, PanelState
from .audit.widgets import ConfidenceBar, Section

__all__ = ["DISCLAIMER", "LAYER_PREFIX", "AuditPanel", "ConfidenceBar", "MaskEntry", "MaskRow", "PanelState",
           "Section"]
