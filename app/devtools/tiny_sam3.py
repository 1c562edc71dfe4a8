"""Write a random-initialised tiny SAM3 checkpoint (``Sam3Model`` + ``Sam3Processor``), offline.

It mirrors ``facebook/sam3`` apart from size: the same architecture classes (ViT backbone with
windowed + global RoPE attention, 4-level FPN neck with scale factors 4/2/1/0.5, CLIP text
encoder, geometry encoder, DETR encoder/decoder with presence head, mask decoder with the
semantic-segmentation head), the same processor (1008x1008 bilinear resize, rescale 1/255,
mean = std = 0.5, 288x288 mask size) and a CLIP byte-level BPE tokenizer with SAM3's special
tokens and 32-token padding. Widths, depths, query count and vocabulary are small so a slice
runs in about a second on CPU. The answers are meaningless; the code paths are the real ones.

Usage: ``python -m app.devtools.tiny_sam3 OUT_DIR`` (writes ``OUT_DIR/tiny-sam3``).
"""
from __future__ import annotations

import sys
from pathlib import Path

# Words the tiny BPE can spell in one token each (everything else falls back to bytes).
_WORDS = (
    "left right lung lungs kidney liver spleen heart aorta tumour tumor lesion nodule mass brain "
    "bone spine rib trachea bladder stomach pancreas ventricle the a of and with"
).split()

TEXT_MAX_LENGTH = 32  # SAM3's text context (the processor pads every prompt to 32 tokens)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode table (the byte-level alphabet of CLIP's BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP-layout vocabulary: bytes, bytes + ``</w>``, merges, then the two special tokens last."""
    alphabet = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for tok in alphabet + [c + "</w>" for c in alphabet]:
        vocab.setdefault(tok, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        # Left-to-right merges spelling the word as one ``word</w>`` token.
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            pair = (symbols[0], symbols[1])
            merged = symbols[0] + symbols[1]
            if pair not in merges:
                merges.append(pair)
            vocab.setdefault(merged, len(vocab))
            symbols = [merged] + symbols[2:]
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, merges


def tiny_sam3_config():
    from transformers import (
        Sam3Config,
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3MaskDecoderConfig,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    vocab, _ = _vocab_and_merges()
    hidden = 32
    heads = 2
    backbone = Sam3ViTConfig(
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads,
        image_size=1008,  # as facebook/sam3: 72x72 patches of 14 px
        patch_size=14,
        window_size=24,  # 72 = 3 x 24, as in the real model
        global_attn_indexes=[1],  # real: [7, 15, 23, 31] (every 8th layer global)
        pretrain_image_size=336,
    )
    vision = Sam3VisionConfig(
        backbone_config=backbone,
        fpn_hidden_size=hidden,
        scale_factors=[4.0, 2.0, 1.0, 0.5],
        backbone_feature_sizes=[[288, 288], [144, 144], [72, 72]],
    )
    text = {
        "vocab_size": len(vocab),
        "hidden_size": hidden,
        "intermediate_size": 64,
        "projection_dim": hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": heads,
        "max_position_embeddings": TEXT_MAX_LENGTH,
        "hidden_act": "gelu",
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    return Sam3Config(
        vision_config=vision,
        text_config=text,
        geometry_encoder_config=Sam3GeometryEncoderConfig(
            hidden_size=hidden, num_layers=1, num_attention_heads=heads, intermediate_size=64
        ),
        detr_encoder_config=Sam3DETREncoderConfig(
            hidden_size=hidden, num_layers=1, num_attention_heads=heads, intermediate_size=64
        ),
        detr_decoder_config=Sam3DETRDecoderConfig(
            hidden_size=hidden, num_layers=1, num_queries=8, num_attention_heads=heads, intermediate_size=64
        ),
        mask_decoder_config=Sam3MaskDecoderConfig(hidden_size=hidden, num_upsampling_stages=3, num_attention_heads=heads),
    )


def tiny_sam3_processor():
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Processor

    vocab, merges = _vocab_and_merges()
    tokenizer = CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=TEXT_MAX_LENGTH,
        unk_token="<|endoftext|>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    # Defaults are facebook/sam3's: 1008x1008 bilinear, rescale 1/255, mean = std = 0.5.
    image_processor = Sam3ImageProcessor()
    return Sam3Processor(image_processor=image_processor, tokenizer=tokenizer)


RECIPE_FILE = "TINY_RECIPE"


def recipe_hash() -> str:
    """Changes when this recipe or the installed transformers changes (then the checkpoint is rewritten)."""
    import hashlib

    import transformers

    src = Path(__file__).read_bytes()
    return hashlib.sha256(src + transformers.__version__.encode()).hexdigest()[:16]


def write_tiny_sam3(out_dir: Path, seed: int = 0) -> Path:
    """Save the tiny model and processor to ``out_dir/tiny-sam3`` and return that folder."""
    import torch
    from transformers import Sam3Model

    target = Path(out_dir) / "tiny-sam3"
    torch.manual_seed(seed)
    model = Sam3Model(tiny_sam3_config()).eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tiny_sam3_processor().save_pretrained(target)
    (target / RECIPE_FILE).write_text(recipe_hash() + "\n")
    return target


def ensure_tiny_sam3(out_dir: Path, force: bool = False) -> Path:
    """``write_tiny_sam3`` unless an up-to-date copy is already there."""
    marker = Path(out_dir) / "tiny-sam3" / RECIPE_FILE
    if not force and marker.is_file() and marker.read_text().strip() == recipe_hash():
        return marker.parent
    return write_tiny_sam3(out_dir)


if __name__ == "__main__":
    print(ensure_tiny_sam3(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
