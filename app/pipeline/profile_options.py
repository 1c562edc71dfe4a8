"""The options a profile role may carry, per backend kind, as typed dataclasses (no torch, no Qt).

A role table in ``models/profiles.toml`` holds the spec fields (``backend``, ``repo_id``,
``revision``, ``local_dir``, ``files``, ``size_gb``, ``vram_gb``) and the backend's own options
beside them. Each dataclass here lists the options one backend kind reads; its defaults are
the ones the backend applies when the key is absent. :func:`option_problems` checks a role's
options against them when the profile loads, so a typo is one line at start-up instead of a
silently ignored key or a failure mid-run.

The dataclasses are the reference for what each key means and its type; the options stay a
plain dict on :class:`~app.pipeline.profiles.ModelSpec` so run.json and every reader of
``spec.options`` are unchanged.
"""
from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass, field
from typing import Any

from app.pipeline.vocab import BackendKind, ConfidenceGate, CropEntity, GlobalEvidence, Role


@dataclass(frozen=True)
class StoreOptions:
    """Read by the model store (fetch, import, verify) whatever the backend."""

    gated: bool = False  # the hub repo needs an accepted licence and a token
    sizes: dict[str, int] = field(default_factory=dict)  # exact byte sizes of expected files
    allow_patterns: list[str] = field(default_factory=list)  # what fetch downloads / import copies
    unpublished: str = ""  # why the weights cannot be had yet (a documented slot): never fetched or loaded


@dataclass(frozen=True)
class InternVLOptions:
    device: str = ""  # "" = CARE_DEVICE, else CUDA when available, else CPU
    dtype: str = ""  # "" = bf16/fp16 on CUDA, fp32 on CPU
    # Image tiling, passed to the processor only when set.
    max_patches: int = 0
    min_patches: int = 0
    crop_to_patches: bool = False
    # Prefill a batch's common prompt prefix (system, slice, question) once and reuse its KV
    # cache for every evidence pass; false: each pass prefilled on its own (the fallback path).
    share_prefix: bool = True


@dataclass(frozen=True)
class SegmenterOptions:
    """How a segmenter's masks are judged (app.pipeline.segmentation.confidence).

    The defaults are the calibrated ones of docs/calibration.md only where profiles.toml says
    so; a run's explicit tau (``--tau``) replaces ``tau`` for every segmenter."""

    tau: float = 0.70  # confidence threshold
    confidence_gate: str = "roi"  # "roi" (bbox + 10 %) | "paper" (whole map): which C meets tau
    min_object_score: float = 0.0  # > 0: the backend's object score (IoU head / presence) must reach it


@dataclass(frozen=True)
class Sam3Options(SegmenterOptions):
    pass


@dataclass(frozen=True)
class LiteMedSAMOptions(SegmenterOptions):
    pass


@dataclass(frozen=True)
class RemoteOptions:
    """An OpenAI-compatible chat endpoint (app.pipeline.remote)."""

    endpoint: str = ""  # https://host/v1
    base_url: str = ""  # older spelling of endpoint
    served_model: str = ""  # the name the server serves; "" = repo_id
    api_key_env: str = ""  # else the OS keyring (service "care-viewer", user = endpoint URL)
    use_keyring: bool = True
    timeout_s: float = 120.0
    max_retries: int = 2
    backoff_s: float = 0.5
    deadline_s: float = 0.0  # absent = no overall deadline
    allow_insecure_http: bool = False
    ca_file: str = ""
    check_model: bool = True  # GET /models once to confirm the server serves served_model
    max_concurrency: int = 3  # requests of one generate call sent together
    temperature: float = 0.0
    logprobs: bool = True
    top_logprobs: int = 0
    # Send skip_special_tokens = false (vLLM, SGLang): the text keeps InternVL's content tokens
    # (<ref>, <box>) as the local backend's does; false: not sent (an API refusing unknown fields).
    keep_special_tokens: bool = True
    # Largest reply accepted (bytes): a bigger one is refused without being read into memory.
    max_response_bytes: int = 8 * 1024 * 1024


@dataclass(frozen=True)
class CoordinatorOptions:
    """The CARE-Coord coordinator itself (any backend), role ``coordinator`` only."""

    uncertainty_threshold: float = 0.4
    # Entropy-guided re-grounding: a heuristic after MedVR (a training-time mechanism there),
    # not part of CARE, so opt-in.
    reground: bool = False
    # May the review replace the experts' vote answer? Off for a local (small) coordinator: the
    # paper found weaker coordinators over-rewrite expert answers; it then reviews, and a
    # different answer is recorded as a finding. A remote coordinator (GPT-5) defaults to on.
    may_revise: bool = False
    max_extra_rounds: int = 2
    max_new_tokens: int = 768


@dataclass(frozen=True)
class EvidenceOptions:
    """How stage 3 builds the evidence the VQA model reads, role ``vqa`` only (any backend)."""

    global_evidence: GlobalEvidence = GlobalEvidence.IMAGE  # "ones-mask": the paper's all-ones mask as Image-2
    crop_entity: CropEntity = CropEntity.MOST_CONFIDENT  # which accepted mask the zoom-in crop is around


@dataclass(frozen=True)
class RemoteCoordinatorOptions:
    """How the coordinator talks to a remote endpoint, role ``coordinator`` with backend remote."""

    may_revise: bool = True  # the paper's GPT-5 coordinator revises (overrides CoordinatorOptions)
    send_images: bool = False  # only with the user's consent for the endpoint
    token_param: str = "max_tokens"  # OpenAI reasoning models want max_completion_tokens
    send_temperature: bool = True
    response_format: bool = True  # guided JSON decoding
    # maxLength on the schema's free-text fields (so guided decoding always closes the JSON);
    # false for OpenAI's strict mode, which refuses string-length keywords.
    length_bounds: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)


OPTIONS_BY_KIND: dict[BackendKind, type] = {
    BackendKind.INTERNVL: InternVLOptions,
    BackendKind.SAM3: Sam3Options,
    BackendKind.LITEMEDSAM: LiteMedSAMOptions,
    BackendKind.REMOTE: RemoteOptions,
}


def allowed_options(kind: BackendKind, role: Role) -> dict[str, Any]:
    """Option name -> its annotated type, for one backend kind in one role."""
    classes: list[type] = [StoreOptions, OPTIONS_BY_KIND.get(kind, StoreOptions)]
    if role == Role.COORDINATOR:
        classes.append(CoordinatorOptions)
        if kind == BackendKind.REMOTE:
            classes.append(RemoteCoordinatorOptions)
    if role == Role.VQA:
        classes.append(EvidenceOptions)
    out: dict[str, Any] = {}
    for cls in classes:
        out.update(typing.get_type_hints(cls))
    return out


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if origin is bool:
        return isinstance(value, bool)
    if origin is float:  # TOML writes 10 for 10.0
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is Any:
        return True
    if isinstance(origin, type) and issubclass(origin, enum.Enum):  # TOML writes the value string
        return value in {m.value for m in origin}
    return isinstance(value, origin)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp) or tp
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in origin)
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            dict: "a table", list: "an array"}.get(origin, getattr(origin, "__name__", str(origin)))


_POSITIVE = frozenset({"max_response_bytes"})  # a zero or negative cap would refuse every reply
_UNIT = frozenset({"tau", "min_object_score"})  # compared with scores in [0, 1]


def option_problems(kind: BackendKind, role: Role, options: dict[str, Any]) -> list[str]:
    """One phrase per option ``kind`` does not know in ``role``, or of the wrong type."""
    allowed = allowed_options(kind, role)
    problems: list[str] = []
    for key, value in options.items():
        if key not in allowed:
            problems.append(f"unknown option {key!r} for backend {kind.value!r}; known: {', '.join(sorted(allowed))}")
        elif not _type_ok(value, allowed[key]):
            problems.append(f"option {key!r} must be {_type_name(allowed[key])}, not {value!r}")
        elif key in _POSITIVE and value <= 0:
            problems.append(f"option {key!r} must be greater than 0, not {value!r}")
        elif key in _UNIT and not 0.0 <= value <= 1.0:
            problems.append(f"option {key!r} must be between 0 and 1, not {value!r}")
        elif key == "confidence_gate" and value not in {g.value for g in ConfidenceGate}:
            problems.append(f"option 'confidence_gate' must be one of "
                            f"{', '.join(repr(g.value) for g in ConfidenceGate)}, not {value!r}")
    return problems


def typed_options(spec_options: dict[str, Any], cls: type) -> Any:
    """``cls`` filled from the matching keys of a spec's options (the rest keep defaults)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in spec_options:
            tp, value = hints[f.name], spec_options[f.name]
            out[f.name] = tp(value) if isinstance(tp, type) and issubclass(tp, enum.Enum) else value
    return cls(**out)
