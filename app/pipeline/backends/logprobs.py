"""Chosen-token log-probabilities during ``model.generate``, in O(steps) memory.

``output_scores=True`` keeps a float32 (batch, vocab) tensor for every generated step: for
Qwen2.5's 151k vocabulary and CARE-Flow's 3-row batch at 512 tokens that is ~0.9 GB per call,
several GB for the coordinator's longer batches, on top of the 8B model's weights. This
processor instead keeps ONE step's log-softmax at a time: when step t+1 is scored, the token
chosen at step t is the last column of ``input_ids``, so its log-prob is gathered and the
(batch, vocab) tensor of step t is dropped; :meth:`finish` gathers the last step's from the
final sequences. It also refuses NaN / +inf logits (float16 overflow in Qwen2-based models on
pre-Ampere GPUs decodes as '!!!!'), raising a PipelineError instead of returning garbage.

It runs after generate's own processors (min_new_tokens, ...) and before the sampling warpers
(temperature, top-k), so greedy log-probs equal ``compute_transition_scores(normalize_logits=True)``
and sampled ones are under the model's untempered distribution.
"""
from __future__ import annotations

from typing import Any

from app.pipeline.types import PipelineError

GARBAGE_MESSAGE = (
    "the model produced invalid scores (NaN or infinite logits) at generated token {step}: "
    "its precision ({dtype}) overflowed on this device. Run with --dtype float32 (CARE_DTYPE=float32) "
    "or on a GPU with bfloat16 support (Ampere or newer)"
)


class ChosenTokenLogprobs:
    """A transformers ``LogitsProcessor`` recording log p(chosen token) per step and row."""

    def __init__(self, dtype: str = "") -> None:
        self.dtype = dtype
        self.steps: list[Any] = []  # one (batch,) float32 tensor per finished step
        self._previous: Any = None  # (batch, vocab) log-softmax of the step not yet resolved
        self.calls = 0

    def __call__(self, input_ids, scores):
        import torch

        self.calls += 1
        # NaN anywhere or +inf means the forward pass overflowed; -inf is a processor's mask.
        if bool(torch.isnan(scores).any()) or bool(torch.isposinf(scores).any()):
            raise PipelineError(GARBAGE_MESSAGE.format(step=self.calls, dtype=self.dtype or "this dtype"))
        if self._previous is not None:
            self._resolve(input_ids[:, -1])
        self._previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def _resolve(self, chosen) -> None:
        picked = self._previous.gather(1, chosen.to(self._previous.device).long()[:, None])[:, 0]
        self.steps.append(picked.detach().float().cpu())
        self._previous = None

    def finish(self, sequences) -> Any:
        """(batch, steps) log-probs of the generated tokens, given generate's final sequences."""
        import torch

        if self._previous is not None:
            self._resolve(sequences[:, -1])
        if not self.steps:
            return torch.zeros((sequences.shape[0], 0))
        return torch.stack(self.steps, dim=1)
