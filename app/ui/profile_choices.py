"""The Ask panel's profile choices: every profile of the model manifest with its install
state and what its weights are (kept apart from the panel's widgets; no Qt)."""
from __future__ import annotations

from dataclasses import dataclass

from app.pipeline.vocab import BackendKind


@dataclass(frozen=True)
class ProfileChoice:
    name: str
    description: str
    installed: bool
    detail: str  # why not installed / how to install
    remote: bool
    disclosure: str = ""  # what the weights are (app.pipeline.disclosure), shown under the chooser
    unavailable: str = ""  # why it can never be installed yet (unpublished weights); "" = it can


def profile_choices() -> tuple[list[ProfileChoice], str]:
    """Every profile of the manifest with its install state, and the one to preselect:
    the manifest's default if installed, else the first installed one."""
    from app.pipeline.disclosure import weights_disclosure
    from app.pipeline.model_store import profile_states
    from app.pipeline.profiles import default_profile_name, load_profiles

    out: list[ProfileChoice] = []
    for name, prof in load_profiles().items():
        remote = any(s.backend == BackendKind.REMOTE for s in prof.models.values())
        states = [s for s in profile_states(prof) if s.spec.backend != BackendKind.REMOTE]
        missing = [s for s in states if not s.installed]
        detail = ""
        if missing:
            roles = ", ".join("/".join(s.roles) for s in missing)
            detail = f"Not installed ({roles}). Run: care-viewer models fetch {name}"
        if prof.unpublished:  # nothing to fetch: say why instead of a command that cannot work
            detail = f"Unavailable: {prof.unpublished}."
        out.append(ProfileChoice(name, prof.description, not missing, detail, remote, weights_disclosure(prof),
                                 prof.unpublished))
    default = default_profile_name()
    installed = [c.name for c in out if c.installed]
    chosen = default if default in installed else (installed[0] if installed else default)
    return out, chosen


def profile_tip(c: ProfileChoice) -> str:
    return "\n\n".join(t for t in (c.description, f"Weights: {c.disclosure}" if c.disclosure else "", c.detail) if t)
