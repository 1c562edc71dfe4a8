"""``care-viewer eval``'s logic, headless: benchmark formats, scoring, resumable concurrent runs."""
