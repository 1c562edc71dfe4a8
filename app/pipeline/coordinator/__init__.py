"""CARE-Coord: the coordinator that plans evidence, re-grounds on uncertainty and reviews
the experts' answers (see coordinator.py for the run, factory.py for profile wiring)."""
from __future__ import annotations

from .base import CoordinatorFailure, StructuredReply
from .coordinator import CareCoordinator, CoordConfig
from .factory import build_coordinator
from .stats import ChangeStats, classify_change

__all__ = [
    "CareCoordinator", "ChangeStats", "CoordConfig", "CoordinatorFailure", "StructuredReply",
    "build_coordinator", "classify_change",
]
