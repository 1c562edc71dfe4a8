"""CARE pipeline: entity proposal, referring segmentation, evidence-grounded VQA (no Qt)."""
