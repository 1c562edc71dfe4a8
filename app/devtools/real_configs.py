"""The real InternVL3-2B-hf / InternVL3-8B-hf shapes as random-initialised checkpoints (no download).

Benchmarks use these to measure real FLOPs and memory without the weights: same layers, widths,
vocabulary size and vision tower as the published ``config.json`` files; only the weights are
random and the tokenizer/processor are the tiny checkpoint's (its ids all lie below the real
vocabulary size, and the processor's tiling, image tokens and template are the real ones).

Source of the shapes: the published model cards / config.json of OpenGVLab/InternVL3-{2B,8B}-hf
(vision InternViT-300M-448px-V2.5; language Qwen2.5-1.5B resp. Qwen2.5-7B), transcribed by hand
(the hub cannot be reached here). ``PUBLISHED_PARAMS`` is the size the hub shows for each repo.

    python -m app.devtools.real_configs [--size 2b|8b]    (prints the parameter count, meta device)
"""
from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.devtools import tiny_models

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "build" / "real-size-models"  # build/ is git-ignored


@dataclass(frozen=True)
class RealShape:
    repo_id: str
    text_layers: int
    text_hidden: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vocab_size: int = 151674  # Qwen2.5's 151643 + 22 control + InternVL's 9 tokens
    vision_layers: int = 24  # InternViT-300M-448px
    vision_hidden: int = 1024
    vision_heads: int = 16
    vision_intermediate: int = 4096
    tie_word_embeddings: bool = False


SHAPES: dict[str, RealShape] = {
    "2b": RealShape("OpenGVLab/InternVL3-2B-hf", 28, 1536, 12, 2, 8960),
    "8b": RealShape("OpenGVLab/InternVL3-8B-hf", 28, 3584, 28, 4, 18944),
}
PUBLISHED_PARAMS = {"2b": 2.09e9, "8b": 7.94e9}  # hub "Model size" of the two -hf repos


def build_config(size: str, tokenizer=None):
    """InternVLConfig of the real shape; special-token ids from ``tokenizer`` (default: the tiny one)."""
    shape = SHAPES[size]
    if tokenizer is None:
        tokenizer = tiny_models._build_tokenizer()
    from transformers import InternVLConfig

    # Rebuild from the tiny config's dict: derived fields (layer_types) must follow the new depth.
    raw = tiny_models._build_config(tokenizer).to_dict()
    v, t = raw["vision_config"], raw["text_config"]
    v.update(hidden_size=shape.vision_hidden, num_hidden_layers=shape.vision_layers,
             num_attention_heads=shape.vision_heads, intermediate_size=shape.vision_intermediate)
    t.update(hidden_size=shape.text_hidden, num_hidden_layers=shape.text_layers, num_attention_heads=shape.text_heads,
             num_key_value_heads=shape.text_kv_heads, intermediate_size=shape.text_intermediate,
             vocab_size=shape.vocab_size, tie_word_embeddings=shape.tie_word_embeddings)
    for derived in ("layer_types", "head_dim", "max_window_layers"):
        t.pop(derived, None)
    raw["tie_word_embeddings"] = shape.tie_word_embeddings
    for key in ("model_type", "transformers_version"):
        raw.pop(key, None)
    config = InternVLConfig(**raw)
    config.architectures = ["InternVLForConditionalGeneration"]
    assert len(tokenizer) <= shape.vocab_size
    return config


def count_params(size: str) -> int:
    """Parameters of the real-shaped model, built on the meta device (no memory)."""
    import torch
    from transformers import InternVLForConditionalGeneration

    config = build_config(size)
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    return sum(p.numel() for p in model.parameters())


def ensure_real_model(size: str, dtype: str = "bfloat16", cache_dir: Path = CACHE_DIR, seed: int = 0,
                      device: str = "cpu") -> Path:
    """Write (once) a random-initialised real-shaped checkpoint with the tiny processor; return its folder.

    ``device``: where the random weights are drawn ("cuda" is minutes faster for the 8B)."""
    import torch
    from transformers import AutoProcessor, InternVLForConditionalGeneration

    target = Path(cache_dir) / f"real-{size}-{dtype}"
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    tiny = tiny_models.ensure_tiny_models() / tiny_models.TINY_INTERNVL_DIR
    processor = AutoProcessor.from_pretrained(tiny)
    config = build_config(size, processor.tokenizer)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # initialise in the saved dtype: half the RAM
    try:
        with torch.device(device):
            model = InternVLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SHAPES), action="append")
    args = parser.parse_args(argv)
    for size in args.size or sorted(SHAPES):
        n = count_params(size)
        ref = PUBLISHED_PARAMS[size]
        print(f"{SHAPES[size].repo_id}: {n / 1e9:.3f} B parameters (published {ref / 1e9:.2f} B, "
              f"{100 * (n - ref) / ref:+.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
