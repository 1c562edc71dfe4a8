"""Evidence slices chosen by evidence: the largest confident cross-section, then its nearest
neighbours, at most ``max_slices`` in all."""
from __future__ import annotations

from dataclasses import dataclass

from app.pipeline.record import Entity
from app.pipeline.vocab import EntitySource, EvidenceSliceRole

from .localise import Localisation

MAX_EVIDENCE_SLICES = 3
CARRIED = "{name} (box from slice {number})"


@dataclass(frozen=True)
class Chosen:
    index: int
    role: EvidenceSliceRole
    area_px: int
    confidence: float | None


def choose(loc: Localisation, asked_from: int, n: int, max_slices: int = MAX_EVIDENCE_SLICES
           ) -> tuple[list[Chosen], str]:
    """(evidence slices, primary first then by distance from it, lower index first on a tie;
    the selection in words, 1-based as the viewer numbers slices)."""
    confident = [s for s in loc.slices if s.confident and s.area_px > 0]
    if confident:
        # Largest area; a tie goes to the more confident mask, then to the slice nearer the one on screen.
        best = max(confident, key=lambda s: (s.area_px, s.confidence or 0.0, -abs(s.index - asked_from)))
        primary = Chosen(best.index, EvidenceSliceRole.PRIMARY, best.area_px, best.confidence)
        why = (f"slice {best.number}: largest confident cross-section ({best.area_px} px, C {best.confidence:.2f}, "
               f"of {len(confident)} confident among {len(loc.slices)} looked at)")
    else:
        s = loc.best(asked_from)
        primary = Chosen(asked_from, EvidenceSliceRole.FALLBACK, 0, s.confidence if s else None)
        why = (f"slice {asked_from + 1}: the slice on screen, because no slice looked at had a confident mask "
               f"(none of {len(loc.slices)} reached tau)")
    pool = loc.confident_pool
    candidates = sorted((k for k in range(n) if k != primary.index and (pool is None or k in pool)),
                        key=lambda k: (abs(k - primary.index), k))
    out = [primary]
    for k in candidates[:max(max_slices - 1, 0)]:
        s = loc.best(k)
        out.append(Chosen(k, EvidenceSliceRole.NEIGHBOUR, s.area_px if s else 0, s.confidence if s else None))
    if len(out) > 1:
        where = "inside the propagated lesion" if pool is not None else "adjacent"
        why += f"; neighbours {', '.join(str(c.index + 1) for c in out[1:])} (nearest slices {where})"
    why += f"; at most {max_slices} evidence slices"
    return out, why


def carry_boxes(loc: Localisation, chosen: list[Chosen], seed_slice: int | None) -> dict[int, list[Entity]]:
    """Entities each evidence run adds: the localisation's own for that slice; on a neighbour the
    localisation did not look at (or found nothing on), the primary slice's box, named as carried."""
    out = {k: list(v) for k, v in loc.located.items()}
    primary = chosen[0]
    src = loc.best(primary.index)
    for c in chosen[1:]:
        if c.index in out or c.index == seed_slice or src is None or src.box is None or not src.confident:
            continue
        out[c.index] = [Entity(CARRIED.format(name=src.entity, number=src.number), tuple(src.box),
                               EntitySource.LOCALISED)]
    return out
