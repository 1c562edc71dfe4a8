"""The one-line disclosure of what a profile's weights are: the one place that writes it.

Every place that names a profile (``models list``, the Ask panel, run.json, the audit panel, the
PDF, the CLI summary) shows this line, so nobody reads "care-paper" as "the paper's results".
The line is derived from the profile's declared ``weights`` (:class:`ProfileWeights`) and the
models its expert roles actually name; a run records the line it ran under
(``RunRecord.weights_disclosure``), and a record written before the field existed shows
:data:`NOT_RECORDED`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from app.pipeline.vocab import BackendKind, ProfileWeights, Role

if TYPE_CHECKING:
    from app.pipeline.profiles import ModelSpec, Profile

NOT_RECORDED = "not recorded"
# The roles whose weights decide the answer (the coordinator is listed with the models).
_EXPERT_ROLES = (Role.ENTITY, Role.SEGMENTER, Role.BOX_SEGMENTER, Role.VQA)


def model_label(spec: "ModelSpec") -> str:
    """A short model name: the repo's last part (InternVL3-8B-hf), SAM3, LiteMedSAM."""
    if spec.backend == BackendKind.LITEMEDSAM:
        return "LiteMedSAM"
    if spec.backend == BackendKind.SAM3 and not spec.local_only:
        return "SAM3"
    return spec.repo_id.rsplit("/", 1)[-1] or str(spec.backend)


def expert_labels(profile: "Profile", where: Callable[["ModelSpec"], bool] = lambda s: True) -> list[str]:
    """The distinct expert models of ``profile`` (those ``where`` accepts), in stage order."""
    out: list[str] = []
    for role in _EXPERT_ROLES:
        spec = profile.get(role)
        if spec is not None and where(spec) and model_label(spec) not in out:
            out.append(model_label(spec))
    return out


def _split(profile: "Profile", where: Callable[["ModelSpec"], bool], others: str) -> str:
    """"a, b" for the experts ``where`` accepts, "; <others>: c" naming the rest."""
    picked = ", ".join(expert_labels(profile, where)) or "none"
    rest = expert_labels(profile, lambda s: not where(s))
    return picked + (f"; {others}: {', '.join(rest)}" if rest else "")


def _hosts(profile: "Profile") -> list[str]:
    from urllib.parse import urlsplit

    hosts: list[str] = []
    for role in _EXPERT_ROLES:
        spec = profile.get(role)
        if spec is not None and spec.backend == BackendKind.REMOTE:
            url = str(spec.options.get("endpoint") or spec.options.get("base_url") or "")
            host = urlsplit(url).hostname or url or "(no endpoint)"
            if host not in hosts:
                hosts.append(host)
    return hosts


def weights_disclosure(profile: "Profile") -> str:
    """One line saying what the profile's weights are and what accuracy to expect."""
    names = ", ".join(expert_labels(profile)) or "no models"
    w = profile.weights
    if w == ProfileWeights.BASE:
        return (f"CARE pipeline with off-the-shelf base models ({names}): not the paper's trained experts; "
                "expect roughly base-model accuracy")
    if w == ProfileWeights.PAPER:
        text = f"CARE pipeline with the CARE paper's trained experts ({names})"
        return text + (": not published yet, so this profile cannot run" if profile.unpublished else "")
    if w == ProfileWeights.RANDOM_TEST:
        return (f"Random-initialised test checkpoints ({_split(profile, lambda s: s.local_only, 'real weights')}): "
                "for tests only; answers are meaningless")
    if w == ProfileWeights.REMOTE:
        hosts = ", ".join(_hosts(profile)) or "a remote server"
        served = _split(profile, lambda s: s.backend == BackendKind.REMOTE, "run locally")
        return (f"CARE pipeline with models served by {hosts} ({served}): this app cannot check which weights "
                "the server runs; not the paper's trained experts unless that server runs them")
    return f"Models {names}: the profile does not say whether these are base, trained or test weights"
