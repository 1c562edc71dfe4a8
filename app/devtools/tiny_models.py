"""Write the tiny random-initialised checkpoints that tests and CI run the real pipeline code on.

    python -m app.devtools.tiny_models [--out DIR] [--force]     (or: python tests/tiny_models.py)

writes ``DIR/tiny-internvl`` and ``DIR/tiny-sam3`` (default DIR: ``app.pipeline.profiles.models_dir()``).

The tiny InternVL mirrors ``OpenGVLab/InternVL3-2B-hf`` in everything but size: the same
``InternVLForConditionalGeneration`` class, InternViT vision tower at 448 px / patch 14 with the
0.5 pixel-shuffle (256 image tokens per tile), the MLP projector, a Qwen2 decoder, the real
special tokens in the real order, the GotOcr2 image processor with the real tiling and
normalisation, and the real InternVL3-hf chat template. Only widths, depths and the BPE vocabulary
(trained offline here on a small corpus) are shrunk, so its answers are meaningless but every code
path (templating, image tokens, tiling, batching, log-probs) is the real one.

Importable: ``ensure_tiny_models(out_dir)`` writes only what is missing or outdated, keyed by
a hash of the recipe stored in ``DIR/tiny-internvl/TINY_RECIPE``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from app.devtools.tiny_sam3 import ensure_tiny_sam3

TINY_INTERNVL_DIR = "tiny-internvl"
RECIPE_FILE = "TINY_RECIPE"

# The real InternVL3-hf chat template (transformers' convert_internvl_weights_to_hf.py).
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}"
    "{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}"
    "{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{'<|im_end|>\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{'<|im_start|>assistant\n' }}"
    "{% endif %}"
)

# Added tokens of the real InternVL3-2B-hf tokenizer, in id order: Qwen2.5's 22 control tokens
# (151643..151664) followed by InternVL's 9 (151665..151673). The tiny vocabulary keeps the order,
# just after a much smaller BPE vocabulary.
QWEN2_CONTROL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]  # fmt: skip
INTERNVL_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
NAMED_IMAGE_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}

BPE_VOCAB_SIZE = 1200  # byte alphabet (256) + merges learnt from the corpus below

# Widths/depths of the tiny model; everything else (image size, patch, downsample ratio, norm and
# activation types, rope settings) is InternVL3-2B-hf's.
TINY_SIZES: dict[str, Any] = {
    "vision_hidden_size": 32,
    "vision_layers": 2,
    "vision_heads": 2,
    "vision_intermediate_size": 64,
    "text_hidden_size": 64,
    "text_layers": 2,
    "text_heads": 4,
    "text_kv_heads": 2,
    "text_intermediate_size": 128,
}

# The variant vLLM serves (tests/remote/test_vllm_real.py): vLLM's CPU attention refuses head
# dimensions under 32, so both towers get head_dim 64; everything else is TINY_SIZES.
TINY_VLLM_DIR = "tiny-internvl-hd64"
TINY_VLLM_SIZES: dict[str, Any] = {
    **TINY_SIZES,
    "vision_hidden_size": 64,
    "vision_heads": 1,
    "text_hidden_size": 128,
    "text_heads": 2,
    "text_kv_heads": 1,
    "text_intermediate_size": 256,
}

_CORPUS_WORDS = """
yes no maybe unclear normal abnormal present absent left right bilateral upper lower middle lobe
lung lungs pleura pleural effusion pneumothorax nodule nodules mass tumour tumor lesion lesions
consolidation atelectasis emphysema fibrosis opacity ground glass cavity airway trachea bronchus
heart cardiac pericardium aorta pulmonary artery vein vessel mediastinum hilum lymph node nodes
liver spleen kidney kidneys adrenal pancreas gallbladder bladder bowel colon stomach spine
vertebra rib ribs sternum clavicle diaphragm brain ventricle ventricles cortex white matter grey
gray cerebellum brainstem midline shift oedema edema haemorrhage hemorrhage infarct enhancing
glioma tumour necrosis contrast axial coronal sagittal slice image images mask crop region zoom
segmentation evidence think answer the a an of in on at with without is are there any which what
where how many size largest smallest side organ structure structures anatomical finding findings
image-1 image-2 binary zoom-in containing question radiologist ct mri mr x-ray scan
""".split()


def _corpus() -> list[str]:
    """Text the tiny BPE learns merges from: medical words, the tag syntax, digits and ASCII."""
    lines = [" ".join(_CORPUS_WORDS)]
    lines += [f"<think>{w} {v}</think><answer>{w}</answer>" for w, v in zip(_CORPUS_WORDS, _CORPUS_WORDS[1:])]
    lines += [f"[[{i}, {i * 3 % 1000}, {i * 7 % 1000}, {i * 11 % 1000}]]" for i in range(0, 1000, 37)]
    lines.append("".join(chr(c) for c in range(32, 127)))
    lines.append("Image-1: Image-2: Answer the question. 1. 2. 3. 4. 5. - , ; : ( ) { } \" '")
    return lines * 3


def _build_tokenizer():
    """A Qwen2 byte-level BPE tokenizer trained offline, with the real added tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    from tokenizers import Regex

    trainer_tok = Tokenizer(models.BPE())
    # Same pre-tokenisation as Qwen2 so merges are learnt on the same pieces.
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    trainer_tok.train_from_iterator(_corpus(), trainer=trainer)
    state = json.loads(trainer_tok.to_str())["model"]
    vocab: dict[str, int] = dict(state["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    # Reserve the added tokens' ids right after the BPE vocabulary, in the real tokenizer's order,
    # so construction (which registers eos/pad/named tokens first) cannot reorder them.
    for token in QWEN2_CONTROL_TOKENS + INTERNVL_TOKENS:
        vocab[token] = len(vocab)

    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",  # InternVL3-hf: generation stops at <|im_end|>
        pad_token="<|endoftext|>",
        errors="replace",
        model_max_length=8192,
        extra_special_tokens=NAMED_IMAGE_TOKENS,
        return_token_type_ids=False,
        clean_up_tokenization_spaces=False,
    )
    tok.add_tokens(QWEN2_CONTROL_TOKENS, special_tokens=True)
    tok.add_special_tokens({"extra_special_tokens": INTERNVL_TOKENS}, replace_extra_special_tokens=False)
    tok.chat_template = INTERNVL_CHAT_TEMPLATE
    return tok


def _build_config(tokenizer, sizes: dict[str, Any] | None = None):
    from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

    s = sizes or TINY_SIZES
    vocab_size = len(tokenizer)
    vision = InternVLVisionConfig(
        hidden_size=s["vision_hidden_size"],
        num_hidden_layers=s["vision_layers"],
        num_attention_heads=s["vision_heads"],
        intermediate_size=s["vision_intermediate_size"],
        image_size=448,
        patch_size=14,
        attention_bias=True,
        use_qk_norm=False,
        norm_type="layer_norm",
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        layer_scale_init_value=0.1,
        use_mean_pooling=True,
        use_absolute_position_embeddings=True,
    )
    text = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=s["text_hidden_size"],
        num_hidden_layers=s["text_layers"],
        num_attention_heads=s["text_heads"],
        num_key_value_heads=s["text_kv_heads"],
        intermediate_size=s["text_intermediate_size"],
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        use_cache=True,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=256,  # (448/14)^2 * 0.5^2
        downsample_ratio=0.5,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    config.architectures = ["InternVLForConditionalGeneration"]
    return config


def _build_processor(tokenizer):
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    norm = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    image_processor = GotOcr2ImageProcessor(
        do_resize=True,
        size={"height": 448, "width": 448},
        resample=3,  # bicubic
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        do_convert_rgb=True,
        crop_to_patches=False,  # the processor turns it on per call (InternVLProcessor.images_kwargs)
        min_patches=1,
        max_patches=12,
        **norm,
    )
    video_processor = InternVLVideoProcessor(
        do_resize=True, size={"height": 448, "width": 448}, do_rescale=True, rescale_factor=1 / 255,
        do_normalize=True, do_convert_rgb=True, **norm,
    )  # fmt: skip
    return InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        image_seq_length=256,
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )


def recipe_hash() -> str:
    """Changes whenever what this module writes may change: its own source or transformers' major version."""
    import transformers

    blob = Path(__file__).read_bytes() + transformers.__version__.split(".")[0].encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_tiny_internvl(out_dir: Path, seed: int = 0, *, name: str = TINY_INTERNVL_DIR,
                        sizes: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/<name>`` (model, processor, tokenizer, chat template) and verify it."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, InternVLForConditionalGeneration

    target = Path(out_dir) / name
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    torch.manual_seed(seed)
    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    config = _build_config(tokenizer, sizes)
    model = InternVLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)

    # Round-trip through the Auto classes the backend uses, before publishing the folder.
    reloaded = AutoProcessor.from_pretrained(tmp)
    assert type(reloaded).__name__ == "InternVLProcessor", type(reloaded)
    assert reloaded.image_token_id == config.image_token_id
    again = AutoModelForImageTextToText.from_pretrained(tmp)
    assert type(again).__name__ == "InternVLForConditionalGeneration", type(again)
    del again

    (tmp / RECIPE_FILE).write_text(recipe_hash() + "\n")
    (tmp / "README.md").write_text(
        "Random-initialised tiny InternVL (architecture/processing of OpenGVLab/InternVL3-2B-hf).\n"
        "Written by app/devtools/tiny_models.py for tests and CI; its answers are meaningless.\n"
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def tiny_internvl_up_to_date(out_dir: Path, name: str = TINY_INTERNVL_DIR) -> bool:
    marker = Path(out_dir) / name / RECIPE_FILE
    return marker.is_file() and marker.read_text().strip() == recipe_hash()


def ensure_tiny_vllm_model(out_dir: Path) -> Path:
    """The head_dim-64 tiny InternVL vLLM can serve (written only when missing or outdated)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tiny_internvl_up_to_date(out_dir, TINY_VLLM_DIR):
        write_tiny_internvl(out_dir, name=TINY_VLLM_DIR, sizes=TINY_VLLM_SIZES)
    return out_dir / TINY_VLLM_DIR


def ensure_tiny_models(out_dir: Path | None = None, force: bool = False) -> Path:
    """Write every tiny checkpoint that is missing or outdated; return the models folder."""
    if out_dir is None:
        from app.pipeline.profiles import models_dir

        out_dir = models_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if force or not tiny_internvl_up_to_date(out_dir):
        write_tiny_internvl(out_dir)
    ensure_tiny_sam3(out_dir, force=force)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="models folder (default: models_dir())")
    parser.add_argument("--force", action="store_true", help="rewrite even if up to date")
    args = parser.parse_args(argv)
    out = ensure_tiny_models(args.out, force=args.force)
    for name in sorted(p.name for p in out.iterdir() if p.name.startswith("tiny-")):
        print(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
