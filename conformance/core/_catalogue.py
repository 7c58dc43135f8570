"""The check catalogue as data: contract §15 ids, names, tiers and the requirement sentence each check enforces.

Ids are stable (never renumbered). T-ids are template-level checks (no server needed); R-ids and the
harness's own L-ids are loop checks, judged from a training loop's dumps (R8 also from an endpoint's refit hook).
"""
from __future__ import annotations

from dataclasses import dataclass

MUST, SHOULD, INFO = "MUST", "SHOULD", "INFO"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    name: str
    tier: str
    kind: str  # exact | contract | statistical
    requirement: str
    probes: tuple[str, ...] = ()


_ROWS = [
    ("E1", "endpoint/models", MUST, "contract",
     "GET {base}/models MUST answer; it SHOULD return 200 with data[0].id usable as model."),
    ("E2", "endpoint/training-body", MUST, "contract",
     "POST {base}/chat/completions MUST accept the full Gym training body, including token and reasoning fields "
     "on assistant messages, and return 200 with choices[0]."),
    ("E3", "tokens/bundle-complete", MUST, "contract",
     "The response MUST yield a complete token bundle from at least one of the three sources; no partial bundle."),
    ("E4", "tokens/bundle-lengths", MUST, "exact",
     "len(generation_token_ids) MUST equal len(generation_log_probs); ids are ints; log probs finite, <= 0."),
    ("E5", "tokens/source-agreement", MUST, "exact",
     "When several token sources are present (bundle, inline ids, token_id:N logprobs) they MUST agree exactly."),
    ("E6", "tokens/usage-counts", SHOULD, "exact",
     "usage.prompt_tokens SHOULD equal len(prompt_token_ids) and usage.completion_tokens len(generation_token_ids)."),
    ("E7", "tokens/decode-consistency", SHOULD, "contract",
     "decode(generation_token_ids) SHOULD re-parse to the returned message; the last id is EOS/stop unless "
     "finish_reason is length."),
    ("E8", "template/first-turn-prompt", SHOULD, "exact",
     "First-turn prompt_token_ids SHOULD equal the reference apply_chat_template(messages, tools, "
     "add_generation_prompt=True)."),
    ("E9", "tokenize/shape", SHOULD, "contract",
     "POST {root}/tokenize SHOULD accept {model, messages, tools?, chat_template_kwargs?} and return "
     "{tokens, count}; MUST when prompt ids are not returned inline."),
    ("E10", "errors/context-overflow", MUST, "contract",
     "Context overflow MUST return HTTP 400 whose body contains 'context length' or 'max_tokens', never 500."),
    ("E11", "request/n-handling", MUST, "contract", "The training path MUST work with n absent or n=1."),
    ("E12", "reasoning/fields-consistent", MUST, "contract",
     "Reasoning fields MUST be present only when a reasoning parser is configured."),
    ("E13", "sampling/pin", SHOULD, "contract",
     "Off-profile temperature/top_p SHOULD be rejected or overridden; unset top_p not taken from "
     "generation_config.json."),
    ("E14", "tools/call-shape", MUST, "contract",
     "message.tool_calls[*] MUST have id, type 'function', function.name and function.arguments as a JSON string."),
    ("E15", "response/finish-reason", MUST, "contract",
     "finish_reason MUST be one of stop, length, tool_calls, content_filter."),
    ("E16", "logprobs/top-logprobs-null", MUST, "contract",
     "logprobs=true with top_logprobs=null in token-id mode MUST return logprobs or HTTP 400, never silently empty."),
    ("E17", "tokenize/chat-parity", MUST, "exact",
     "/tokenize with the identical first-turn body MUST return exactly the chat prompt_token_ids (when served)."),
    ("E18", "request/max-tokens-clamp", SHOULD, "contract",
     "max_tokens SHOULD be clamped to max_model_len - len(prompt); a prompt alone over max_model_len gets 400."),
    ("E19", "logprobs/token-id-strings", MUST, "exact",
     "Logprob token strings MUST be 'token_id:N' exactly when return_tokens_as_token_ids is requested."),
    ("E20", "logprobs/processed-temperature", SHOULD, "statistical",
     "Returned log probs SHOULD be processed (temperature-scaled): at tau=0.6 they match log_softmax(logits/tau)."),
    ("E21", "tokens/single-bos", SHOULD, "exact", "Served prompt ids SHOULD contain exactly one BOS."),
    ("E22", "request/default-max-tokens", SHOULD, "contract", "Omitted max_tokens SHOULD not be capped at 16."),
    ("E23", "errors/error-body", INFO, "contract", "Error bodies MAY use {error: {message, type, code}}."),
    ("E24", "template/system-only", SHOULD, "exact",
     "System-only prompts SHOULD give a clear error or the reference render."),
    ("E25", "tokens/emitted-ids-accepted", MUST, "exact",
     "Every id the model can emit (below the model's vocab_size, which may exceed the tokenizer's length) MUST be "
     "accepted when carried back on an assistant message (NVIDIA-NeMo/RL#237, vllm-project/vllm#22471)."),
    ("E26", "logprobs/aligned-with-ids", MUST, "statistical",
     "generation_log_probs[i] MUST be the log prob of generation_token_ids[i], as the trainer uses them per position "
     "(contract 9.3, R11): teacher-forced "
     "rescoring agrees in place, not one position off (P16 off-by-one; a structural defect, unlike M24's "
     "tolerance)."),
    ("M1", "multiturn/prefix-continuity", MUST, "exact",
     "prompt_token_ids of call k+1 MUST start with P_k + G_k, whether G_k ends in EOS or was truncated."),
    ("M2", "multiturn/splice-exact", SHOULD, "exact",
     "prompt_token_ids of call k+1 SHOULD equal splice(P_k+G_k, TP, T, eos) of contract 7.4 over the reference "
     "render (MUST for the reference server)."),
    ("M3", "multiturn/bpe-retokenization", MUST, "exact",
     "A non-canonical previous generation MUST survive verbatim in the next prompt and in /tokenize."),
    ("M4", "multiturn/tool-call-bytes", MUST, "exact",
     "Tool-call text with non-template whitespace or key order MUST survive verbatim in the next prompt."),
    ("M5", "multiturn/reasoning-kept", MUST, "exact",
     "Across user and tool turns, continuity MUST hold and reasoning bytes be preserved in the served prompt."),
    ("M6", "multiturn/message-level-prefix", MUST, "contract",
     "The prefix MUST be derived from message-level fields; no out-of-band field needed."),
    ("M7", "multiturn/greedy-golden", SHOULD, "exact",
     "Greedy first token with the spliced prefix SHOULD equal direct engine generation on the same ids."),
    ("M8", "multiturn/bundle-roundtrip", MUST, "exact",
     "The bundle MUST sit on the last output item of a call and pass back unchanged on the next request."),
    ("M9", "multiturn/no-env-token-fields", MUST, "contract",
     "Environment items (tool outputs, user messages) MUST carry no token fields."),
    ("M10", "splice/unit-vectors", MUST, "exact", "The splice MUST pass the unit vectors of contract 7.7."),
    ("M11", "multiturn/truncated-turn", MUST, "exact",
     "After a truncated turn exactly one end-of-turn token MUST follow the sampled ids; finish_reason length."),
    ("M12", "multiturn/turn-separator", MUST, "exact",
     "The turn separator after the model's end token MUST appear exactly once."),
    ("M13", "tokenize/multiturn-parity", MUST, "exact",
     "Multi-turn /tokenize with carried ids MUST equal the chat prompt_token_ids (when /tokenize is served)."),
    ("M14", "multiturn/assistant-without-ids", MUST, "exact",
     "An assistant without ids after one with ids MUST be refused or every message served; none dropped."),
    ("M15", "multiturn/empty-prefix-ids", MUST, "contract",
     "Empty id lists MUST give a loud error or a documented fallback, never an un-spliced prompt as corrected."),
    ("M16", "multiturn/non-monotonic", MUST, "contract", "Non-monotonic history MUST not be reported continuous."),
    ("M17", "template/eos-end-of-turn", MUST, "exact",
     "The tokenizer's EOS MUST be the token that closes assistant turns in the chat template."),
    ("M18", "template/tool-args-string", MUST, "exact",
     "Tool-call arguments sent as a JSON string MUST render as the object, never per character or double-encoded."),
    ("M19", "multiturn/parallel-tool-results", SHOULD, "exact",
     "Parallel tool results SHOULD render as the template's single tool turn, with continuity kept."),
    ("M20", "multiturn/reasoning-field-names", SHOULD, "exact",
     "Reasoning sent as reasoning_content, as reasoning, or inline <think> SHOULD yield identical served prompts."),
    ("M21", "reasoning/new-turn-parse", SHOULD, "contract",
     "New-turn reasoning after history containing </think> SHOULD land in reasoning, not content."),
    ("M22", "request/clamp-spliced", MUST, "contract", "The max_tokens clamp MUST use the spliced prompt length."),
    ("M23", "multiturn/empty-think", MUST, "exact",
     "An assistant turn without reasoning MUST not break continuity (no transient empty think block)."),
    ("M24", "logprobs/rescore-fidelity", SHOULD, "statistical",
     "Teacher-forced rescoring of prompt+generation SHOULD reproduce generation_log_probs: token_mult_prob_error "
     "<= 1.05, k3 KL <= 1e-3."),
    ("M25", "tokens/sentencepiece-first", MUST, "exact", "Assistant-span ids MUST equal the in-context encoding."),
    ("M26", "tools/harmony-header", MUST, "exact", "GPT-OSS tool headers MUST keep the model's attribute order."),
    ("M27", "multimodal/ids-preserved", MUST, "exact", "Image placeholder ids MUST be identical across turns."),
    ("M28", "multiturn/own-generation-accepted", MUST, "contract",
     "An endpoint MUST accept its own generation sent back verbatim or as Gym re-arranges it (think blocks "
     "anywhere, special tokens, pieces not valid UTF-8 alone), and continue it, also two calls after a turn the "
     "model closed with a secondary stop id (§7.9 row 2: that id closes a turn when counting turns): a false "
     "refusal loses the rollout."),
    ("L1", "loop/trained-equals-served", MUST, "exact",
     "Every trained input_ids MUST equal the concatenation of what the server returned for its rollout: "
     "the first prompt, then per call the new prompt ids and the generation (no re-tokenization in the "
     "trainer)."),
    ("L2", "loop/group-advantages", MUST, "exact",
     "Each trained sequence's advantage MUST be the declared estimator (GRPO, Dr. GRPO, leave-one-out) "
     "over its own group's rewards, never normalised over the batch."),
    ("L3", "loop/reward-curve-in-band", MUST, "statistical",
     "On a benchmark task of this repository, the training reward (10-step trailing mean) MUST not fall "
     "below the lowest reference seed's by more than 0.05 at steps 50, 100, 150 and 200."),
    ("R1", "loop/reward-components", MUST, "exact",
     "Every successful rollout's reward MUST be a finite number; with reward_components it MUST equal "
     "their sum within rel 1e-5 / abs 1e-6."),
    ("R2", "loop/every-rollout-trains", MUST, "contract",
     "Every successful rollout MUST have generated ids and be trained on or left out with its reason; none"
     " lost silently or turned into a masked dummy."),
    ("R3", "loop/contiguity-enforced", MUST, "exact",
     "A rollout whose calls do not extend each other (contract 9.2) MUST be refused and flagged, never "
     "trained on."),
    ("R4", "loop/mask-on-generated", MUST, "exact",
     "The loss mask MUST be 1 exactly on generated ids and 0 on prompt, tool-output and template tokens."),
    ("R5", "loop/sampling-stamped", MUST, "contract",
     "temperature and top_p MUST be stamped into every row's responses_create_params; stop strings, stop "
     "ids and top_k stay unset."),
    ("R6", "loop/rows-reassociated", MUST, "contract",
     "Results MUST be matched back to their own rows: one task and one first prompt per row index, one row"
     " per group, each train line naming its rollout's row."),
    ("R8", "loop/refit-followed", MUST, "statistical",
     "Weights MUST be refit before each rollout batch, prefix cache reset: after the refit hook (--refit-url) "
     "loads the trainer's weights (--rescore-model), served log probs follow them within M24's bounds; in a loop's "
     "dumps, every call of a step is served by the weights that step trains."),
    ("R9", "loop/truncation-handled", MUST, "contract",
     "A response cut off by the token budget MUST be handled as the loop declares (trained exactly as "
     "served, or dropped), never trained as if complete."),
    ("R10", "load/concurrent-sessions", SHOULD, "statistical",
     "The endpoint SHOULD sustain at least --load-threshold (2,000 on real hardware) concurrent Gym multi-turn "
     "sessions spread over its data-parallel ranks with per-session affinity, every call answered without a "
     "server error (even one Gym's retries hide); under that load "
     "each session MUST keep prompt continuity and get its own prompt, and a refit MUST never mix weights within a "
     "response or serve the old weights once acknowledged."),
    ("R11", "loop/old-logprobs-served", MUST, "exact",
     "The old (behaviour) log probs the loss uses MUST be the served generation_log_probs, not a "
     "recompute."),
    ("R12", "loop/no-nan-trained", MUST, "exact",
     "A rollout with a non-finite served log prob MUST be refused and flagged; no trained position carries"
     " a non-finite log prob."),
    ("R14", "loop/mismatch-bounds", SHOULD, "statistical",
     "Per step, the trainer's and the served log probs SHOULD agree: token_mult_prob_error <= 1.05 and k3 "
     "<= 1e-3."),
    ("B1", "benchmark/dapo17k-aime24", MUST, "statistical",
     "Qwen3-4B-Instruct-2507 trained on DAPO17k for at least 1,000 steps MUST reach AIME24 mean@32 "
     "validation accuracy of at least 0.85 (judged from the run's metrics)."),
    ("B2", "benchmark/workplace-assistant", MUST, "statistical",
     "The same model trained on workplace_assistant for at least 100 steps MUST show a validation accuracy"
     " gain (judged from the run's metrics)."),
    ("B3", "benchmark/smoke", MUST, "contract",
     "A run MUST complete at least 3 GRPO steps (their metrics logged)."),
    ("B4", "benchmark/reward-trend", SHOULD, "statistical",
     "The training reward SHOULD trend up over the run (10-step trailing mean at the end above the start) "
     "and the validation reward rise."),
    ("T1", "template/prefix-preserving", INFO, "exact",
     "The chat template is prefix-preserving when a rendered turn plus the model's output is a prefix of every "
     "later render; where it is not, the server's splice must absorb the difference (reported, not graded)."),
    ("T2", "template/turn-separator-consistent", SHOULD, "exact",
     "The template SHOULD close assistant turns with the same end token and separator as every other turn."),
    ("T3", "template/tool-call-roundtrip", SHOULD, "exact",
     "A tool call in the template's own documented format SHOULD re-render byte-identically once parsed."),
]

CATALOGUE: dict[str, CheckSpec] = {row[0]: CheckSpec(*row) for row in _ROWS}


def spec(check_id: str) -> CheckSpec:
    """The catalogue row for ``check_id`` (KeyError names the unknown id)."""
    try:
        return CATALOGUE[check_id]
    except KeyError:
        raise KeyError(f"unknown check id {check_id!r}") from None
