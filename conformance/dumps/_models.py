"""The loop dump formats, one pydantic model per JSONL line: validation and the published JSON Schema.

A framework writes these from its own training loop; the loop checks read them. Three files:

- **rollouts** (``gym-conformance/rollouts/1``): one line per rollout as the trainer received it: the Gym row it
  ran (task fields, and the sampling stamped into ``responses_create_params``), the reward and its components,
  and every model call's token bundle exactly as the server returned it.
- **train batches** (``gym-conformance/train-batches/1``): one line per trained sequence: the ids, loss mask and
  old log probs the loss used, the trainer's own log probs, the advantage, the weight version trained.
- **metrics**: one line per step of scalars (``step`` plus numbers), the form most loops already log; the
  ``schema`` field is optional there so an existing log reads unchanged.

Per-position lists of a train line are aligned with ``input_ids``: entry ``t`` belongs to the token at
position ``t`` (the log prob of ``input_ids[t]`` given ``input_ids[:t]``), whatever is written at positions
whose ``loss_mask`` is 0. A log prob that is not a finite number is written as ``null`` or ``NaN``; both read
as "not finite" (R12).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROLLOUTS_SCHEMA = "gym-conformance/rollouts/1"
BATCHES_SCHEMA = "gym-conformance/train-batches/1"
METRICS_SCHEMA = "gym-conformance/metrics/1"

TokenId = Annotated[int, Field(ge=0)]
Step = Annotated[int, Field(ge=0)]
LogProb = float | None  # None (JSON null) or NaN: the server or trainer had no finite value
Version = int | str | None  # whatever the framework calls a weight version (step number, hash, ...)


class _Line(BaseModel):
    # strict: a bool is not a number and "3" is not an int; forbid: an unknown key is a typo
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class ServedCall(_Line):
    """One model call of a rollout: the token bundle exactly as the server returned it."""

    prompt_token_ids: list[TokenId]
    generation_token_ids: list[TokenId]
    generation_log_probs: list[LogProb]
    finish_reason: str | None = None
    weight_version: Version = None  # the version the server reported serving this call

    @model_validator(mode="after")
    def _lengths(self) -> "ServedCall":
        if len(self.generation_log_probs) != len(self.generation_token_ids):
            raise ValueError(f"{len(self.generation_log_probs)} generation_log_probs for "
                             f"{len(self.generation_token_ids)} generation_token_ids")
        return self


class RolloutLine(_Line):
    """One rollout as the trainer received it from Gym (``result`` of ``run_examples``), plus its bookkeeping."""

    schema_: Literal["gym-conformance/rollouts/1"] = Field(alias="schema")
    step: Step
    rollout_id: str = Field(min_length=1, description="unique in the file; train-batch lines name it")
    row_index: Annotated[int, Field(ge=0)] = Field(description="the framework's key for the row (Gym's _rowidx)")
    group_id: int | str = Field(description="the GRPO group: the samples of one row in one step share it")
    row: dict[str, Any] = Field(description="the Gym row as sent: task fields and responses_create_params with "
                                            "the sampling the trainer stamped into it (R5)")
    reward: float | None = Field(description="the verifier's reward; null only with an error")
    reward_components: dict[str, float] | None = None
    truncated: bool = Field(False, description="the last call ended on the token budget (finish_reason length)")
    error: str | None = Field(None, description="the rollout failed (an explicit error, R2)")
    excluded: str | None = Field(None, description="why the trainer left this rollout out of training "
                                                   "(contiguity break, NaN log probs, ...); null: trained")
    calls: list[ServedCall]

    @model_validator(mode="after")
    def _reward_or_error(self) -> "RolloutLine":
        if self.reward is None and self.error is None:
            raise ValueError("reward is null but no error says why")
        return self


class TrainLine(_Line):
    """One trained sequence, as the loss saw it."""

    schema_: Literal["gym-conformance/train-batches/1"] = Field(alias="schema")
    step: Step
    rollout_id: str = Field(min_length=1)
    row_index: Annotated[int, Field(ge=0)]
    input_ids: list[TokenId]
    loss_mask: list[Literal[0, 1]]
    old_log_probs: list[LogProb] = Field(description="the behaviour log probs the loss's ratio used (R11)")
    trainer_log_probs: list[LogProb] | None = Field(None, description="the trainer's log probs before the update")
    advantage: float | list[float] = Field(description="one per sequence, or one per position")
    weight_version: Version = None  # the version of the weights this step trains (and the server should serve)

    @model_validator(mode="after")
    def _aligned(self) -> "TrainLine":
        n = len(self.input_ids)
        for name in ("loss_mask", "old_log_probs", "trainer_log_probs", "advantage"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries for {n} input_ids (one per position)")
        return self


class MetricsLine(BaseModel):
    """One step of scalars. Any numeric key is kept (``reward_mean``, ``val_reward``, ``token_mult_prob_error``,
    ``mismatch_k3``, ...); a non-numeric value is ignored, so a loop's own log reads as it is."""

    model_config = ConfigDict(extra="allow")
    schema_: Literal["gym-conformance/metrics/1"] | None = Field(None, alias="schema")
    step: Step

    def scalars(self) -> dict[str, float]:
        return {k: float(v) for k, v in (self.model_extra or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}


DOCUMENTS: dict[str, type[BaseModel]] = {"rollouts": RolloutLine, "batches": TrainLine, "metrics": MetricsLine}
SCHEMA_IDS = {"rollouts": ROLLOUTS_SCHEMA, "batches": BATCHES_SCHEMA, "metrics": METRICS_SCHEMA}


def line_json_schema(document: str) -> dict:
    """The published JSON Schema of one line of ``document`` (rollouts | batches | metrics)."""
    schema = DOCUMENTS[document].model_json_schema(by_alias=True)
    schema["description"] = f"One line of a {document} dump ({SCHEMA_IDS[document]}); the file is JSON Lines. " \
        + (schema.get("description") or "")
    return schema
