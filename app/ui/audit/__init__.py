"""The audit panel, in sections (header, entities, masks, evidence, answers, coordinator,
provenance, overrides) laid out from the run's presentation (:mod:`app.audit.present`)."""
