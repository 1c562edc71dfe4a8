"""Per-slice image embeddings kept warm, shared by the segmentation backends.

Encoding a slice is the expensive part of box- and text-prompted segmentation; every entity
on that slice (and a re-ask with edited evidence) reuses the embedding. Only the most recent
slices are kept, so scrolling through a series cannot grow memory without bound.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")


class EmbeddingCache(Generic[T]):
    """A small least-recently-used map from an image key to its embedding."""

    def __init__(self, max_slices: int) -> None:
        self.max_slices = max_slices
        self._entries: OrderedDict[str, T] = OrderedDict()

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: T) -> T:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_slices:
            self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)
