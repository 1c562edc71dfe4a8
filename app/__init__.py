"""CARE Viewer: auditable evidence-grounded medical VQA."""
__version__ = "0.1.0"
