"""The evidence report PDF of one run (reportlab; no Qt)."""
from .document import DISCLAIMER, PAGE_SIZES, build_report

__all__ = ["DISCLAIMER", "PAGE_SIZES", "build_report"]
