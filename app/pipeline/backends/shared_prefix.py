"""One prefill of the prompt prefix that a batch's requests share (CARE-Flow's three passes).

CARE-Flow's crop, mask and global requests start with the same tokens: the system prompt, the
slice (Image-1) and the question (``prompts.vqa_request`` puts the evidence image last). Prefilling
each request on its own encodes the slice three times in the vision tower and attends the same
prefix three times in the language model. Here instead:

1. the common prefix (the longest common run of token ids, cut before any image whose pixels
   differ between requests or that the prefix would split) is run ONCE, batch 1, and its KV
   cache kept; its images (the slice) are encoded once, in the same vision-tower call as the
   requests' own images;
2. each request's own suffix (its evidence image and text, but its last token) runs on a copy of
   that cache, batch 1 with no padding, so no compute is spent on pad positions;
3. the caches are stacked into one batch with the padding between prefix and suffix (masked, zero
   keys/values) and ``model.generate`` continues from it: it runs only the last prompt token of
   each row, then decodes the batch as the unshared path does (same logits processors, so the
   per-step chosen-token log-probs are unchanged).

Positions are the unpadded ones (``generate`` derives them from the attention mask), so each row
is computed exactly as its request alone; only floating-point summation order differs from the
left-padded unshared batch, which tests check stays within tolerance (and greedy tokens equal).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class ImageSpan:
    start: int  # index in the row of its first image-context token
    end: int  # one past its last
    tiles: tuple[int, int]  # [first, last) rows of the batch's pixel_values


@dataclass(frozen=True)
class PrefixPlan:
    length: int  # prompt tokens prefilled once for every row
    prefix_images: int  # images inside the prefix (vision features computed once)
    rows: list[Any]  # each request's unpadded input ids (1-D LongTensors)
    spans: list[list[ImageSpan]]  # each row's images, in token order


def image_spans(rows: Sequence[Any], image_token_id: int, tokens_per_tile: int) -> list[list[ImageSpan]]:
    """Every image's run of context tokens per row, with its tiles in the batch's pixel_values
    (the processor concatenates tiles in image order, row after row)."""
    out: list[list[ImageSpan]] = []
    tile = 0
    for row in rows:
        ids = row.tolist()
        spans: list[ImageSpan] = []
        i = 0
        while i < len(ids):
            if ids[i] != image_token_id:
                i += 1
                continue
            j = i
            while j < len(ids) and ids[j] == image_token_id:
                j += 1
            n = (j - i) // tokens_per_tile
            spans.append(ImageSpan(i, j, (tile, tile + n)))
            tile += n
            i = j
        out.append(spans)
    return out


def plan_prefix(rows: Sequence[Any], pixel_values: Any, image_token_id: int, tokens_per_tile: int) -> PrefixPlan | None:
    """The shared prefix of ``rows`` (unpadded input ids), or None when there is none to share.

    The prefix leaves every row at least one token of its own (``generate`` must run one) and
    contains only whole images whose pixels are equal in every row."""
    import torch

    if len(rows) < 2:
        return None
    shortest = min(len(r) for r in rows)
    length = 0
    first = rows[0]
    while length < shortest - 1 and all(int(r[length]) == int(first[length]) for r in rows[1:]):
        length += 1
    spans = image_spans(rows, image_token_id, tokens_per_tile)
    images = 0
    for k, span in enumerate(spans[0]):
        if span.start >= length:
            break
        whole = span.end <= length
        same = whole and all(
            len(s) > k and s[k].start == span.start and s[k].end == span.end
            and torch.equal(pixel_values[s[k].tiles[0]:s[k].tiles[1]], pixel_values[span.tiles[0]:span.tiles[1]])
            for s in spans[1:]
        )
        if not same:  # equal tokens, different pixels (or a split image): share only what precedes it
            length = span.start
            break
        images += 1
    if length == 0:
        return None
    return PrefixPlan(length=length, prefix_images=images, rows=list(rows), spans=spans)


def prefill(model: Any, plan: PrefixPlan, pixel_values: Any, pad_token_id: int) -> dict[str, Any]:
    """Run the prefix once and each suffix on its copy; return ``generate`` kwargs
    (``input_ids``, ``attention_mask``, ``cache``) continuing from the stacked cache."""
    import torch
    from transformers import DynamicCache
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    device = model.device
    P = plan.length
    prefix = plan.rows[0][:P].to(device)
    # Every image to encode, once: the prefix's (the slice) and each row's own (its evidence image).
    groups = [[s for s in plan.spans[0] if s.end <= P]] + [[s for s in spans if s.start >= P] for spans in plan.spans]
    features: list[Any] = [None] * len(groups)
    tiles = [t for g in groups for s in g for t in range(*s.tiles)]
    if tiles:  # one vision-tower call for all of them: its cost per call is not only per tile
        encoded = model.get_image_features(pixel_values=pixel_values[tiles], return_dict=True).pooler_output
        at = 0
        for i, g in enumerate(groups):
            n = sum(s.tiles[1] - s.tiles[0] for s in g)
            features[i] = encoded[at:at + n] if n else None
            at += n

    def forward(ids, start, feats, cache):
        n = ids.shape[0]
        images = None if feats is None else {"image": BaseModelOutputWithPooling(pooler_output=feats)}
        model(input_ids=ids[None], mm_encoder_outputs=images,
              attention_mask=torch.ones((1, start + n), dtype=torch.long, device=device),
              position_ids=torch.arange(start, start + n, device=device)[None],
              cache=cache, use_cache=True, logits_to_keep=1)

    base = DynamicCache(config=model.config)
    forward(prefix, 0, features[0], base)
    heads = [(layer.keys, layer.values) for layer in base.layers]
    suffixes, own = [], []  # per row: its suffix ids; its suffix's (keys, values) per layer
    for row, feats in zip(plan.rows, features[1:]):
        suffix = row[P:].to(device)
        suffixes.append(suffix)
        if suffix.shape[0] == 1:  # nothing of its own to prefill but the token generate runs
            own.append(None)
            continue
        cache = DynamicCache(config=model.config)
        for layer, (k, v) in zip(cache.layers, heads):
            layer.update(k, v)
        forward(suffix[:-1], P, feats, cache)
        own.append([(layer.keys[:, :, P:], layer.values[:, :, P:]) for layer in cache.layers])

    longest = max(s.shape[0] for s in suffixes)
    total = P + longest
    ids = torch.full((len(suffixes), total), pad_token_id, dtype=prefix.dtype, device=device)
    mask = torch.zeros((len(suffixes), total), dtype=torch.long, device=device)
    ids[:, :P] = prefix
    mask[:, :P] = 1
    for r, suffix in enumerate(suffixes):
        ids[r, total - suffix.shape[0]:] = suffix
        mask[r, total - suffix.shape[0]:] = 1
    stacked = DynamicCache(config=model.config)
    for i, (layer, (k0, v0)) in enumerate(zip(stacked.layers, heads)):
        shape = (len(suffixes), k0.shape[1], total - 1, k0.shape[3])
        keys, values = k0.new_zeros(shape), v0.new_zeros((*shape[:3], v0.shape[3]))
        keys[:, :, :P], values[:, :, :P] = k0, v0
        for r, suffix in enumerate(suffixes):
            if own[r] is not None:
                k, v = own[r][i]
                keys[r, :, total - suffix.shape[0]:total - 1] = k[0]
                values[r, :, total - suffix.shape[0]:total - 1] = v[0]
        layer.update(keys, values)
    return {"input_ids": ids, "attention_mask": mask, "cache": stacked}


def can_share(model: Any) -> bool:
    """Only plain full-attention dynamic caches can be stacked this way (no sliding window)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)
