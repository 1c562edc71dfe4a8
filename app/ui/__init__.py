"""PySide6 views. Nothing outside app/ui imports Qt."""
