"""CARE-Coord runs for the coordinator tests: the caller picks the strategy (as the CLI and the
GUI worker do), the engine only runs the stages."""
from __future__ import annotations

import weakref
from typing import Any

from app.pipeline.strategies import CoordStrategy, strategy_for
from app.pipeline.vocab import Mode

# One strategy per pipeline, as the GUI's PipelineCache keeps it: the coordinator is built on the
# first coord run and reused by the next (consent, provenance).
_COORD: "weakref.WeakKeyDictionary[Any, CoordStrategy]" = weakref.WeakKeyDictionary()


def coord_strategy(pipeline: Any) -> CoordStrategy:
    if pipeline not in _COORD:
        _COORD[pipeline] = strategy_for(Mode.COORD, pipeline)  # type: ignore[assignment]
    return _COORD[pipeline]


def run_coord(pipeline: Any, volume: Any, slice_index: int, question: str, **kwargs: Any) -> Any:
    """One CARE-Coord run of ``pipeline``."""
    return pipeline.run(volume, slice_index, question, strategy=coord_strategy(pipeline), **kwargs)
