"""Study scope: a question answered about the whole series (``ask --scope study``, the Ask
panel's Scope). :class:`StudyStrategy` localises the entity across the volume
(:mod:`.localise`), chooses the evidence slices by evidence (:mod:`.select`), runs each through
the CARE stages with the run's own strategy (CARE-Flow or CARE-Coord), and aggregates the
per-slice answers with a recorded rule (:mod:`.aggregate`). The record's ``study`` section
(app.pipeline.study_record) holds all of it."""
from .strategy import StudyStrategy, study_strategy

__all__ = ["StudyStrategy", "study_strategy"]
