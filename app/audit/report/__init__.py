"""The evidence report PDF of one run (reportlab; no Qt)."""
from .document import DISCLAIMER, PAGE_SIZES, ReportError, build_report, failure_reason

__all__ = ["DISCLAIMER", "PAGE_SIZES", "ReportError", "build_report", "failure_reason"]
