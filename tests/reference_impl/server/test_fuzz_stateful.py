"""The reference server under a stateful fuzz (issue 13, "Anchors: schemathesis's not_a_server_error and stateful
testing"): sequences of the operations Gym traffic is made of, interleaved with hostile variations of them, on the
transformers engine in process, with invariants checked after every step. Found cases are kept as regression tests
at the end of the module.

Why hypothesis's ``RuleBasedStateMachine`` and not schemathesis's stateful testing: schemathesis chains operations
through OpenAPI links, and a link only copies values out of one exchange into the next request (runtime
expressions such as ``$response.body#/choices/0/message/prompt_token_ids``). A rollout's next request is the whole
history so far, plus the previous reply turned into an assistant message that carries its token bundle, plus a
tool output or a user turn: an append to an array, which no link expression builds. The invariants are about the
sequence as well (the served prompt continues the carried P + G, the weight version only rises, a refused reload
leaves the weights as they were), so the test has to hold state between calls. (The document publishes no links,
and ``as_state_machine()`` refuses it: "Schema contains no link definitions".) So the rules below are the Gym
operations and their hostile variants, each with what the server must answer; schemathesis contributes what it is
good at: one rule sends a request drawn from the server's own OpenAPI document, the stateless fuzz's generator, at
any point of a sequence, judged with schemathesis's ``not_a_server_error`` check.

Rules: start a rollout (optionally with tools, a forced tool choice, thinking on or off; every sequence opens with
a named tool choice, so the untrained model really calls the tool); continue one with a user turn, or with one
tool output per tool call, the reply carried back verbatim or through Gym's own Responses-item round trip
(``conformance.client``); the same next turn with the carried bundle damaged (a field dropped or emptied, ids
edited, truncated, out of vocabulary or of the wrong type, log probs as ``"NaN"`` strings or non-finite numbers,
the bundle on a user message or swapped with another rollout's, the content rewritten, an id-less assistant turn
after it, a huge carried prompt); tool outputs duplicated, missing, misaddressed or malformed; histories empty, at
the message limit, over it, or one huge message; ``/weights/reload`` to a new checkpoint, to the model's own
directory, outside the allowed root (directly, by ``..`` or by a symlink), relative, missing, a file, empty, with
an unknown or a wrong-shaped tensor, truncated, not safetensors at all, with a NUL byte or an over-long name, or
of the wrong type; a request from the document.

Invariants, after every step: no 5xx, ever; every 4xx an OpenAI-style error object with ``code`` equal to the
status (``conftest.assert_openai_error``, shared with the stateless fuzz); every 200 chat reply readable by Gym
(``conformance.client.choose``) and, when the request carried a bundle, serving a prompt that starts with the last
carrier's ``prompt_token_ids + generation_token_ids`` (the on-policy correction), equal to what ``/tokenize``
answers for the same body; a well-formed carried-back rollout is never refused but for a full context (400
"context length", which Gym turns into the end of the episode); a damaged bundle that the protocol rules out is
refused with 400 by chat and ``/tokenize`` alike; ``/health`` answers and its ``weight_version`` never goes down
(it rises by one per accepted reload and is unchanged otherwise); a refused reload leaves the served log probs
exactly as they were, an accepted one serves that checkpoint's. After every sequence a plain correct request still
succeeds.

The CI bound (profile ``reference-server-stateful``): 20 sequences of at most 16 steps, derandomized, no example
database: 40 to 60 s on this machine's two shared cores, about 35 s of CPU (the fixture's imports and checkpoints,
20 s more). The hostile rules try every variant of their family in one step and run at most once a sequence
(``CAPS``); hypothesis's swarm testing switches rules off per sequence, so the test asserts afterwards that every
rule and every hostile variant ran, and that continuity was checked on carried bundles and tool outputs followed
real tool calls.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)
from schemathesis.checks import not_a_server_error

from conformance.client import choose, read_sources, to_messages, to_output_items, tokenize_body, training_body
from fixtures import fixture_path
from reference_impl.server.app import create_app
from reference_impl.server.engines.hf import HFEngine
from reference_impl.server.protocol import MAX_MESSAGES, ApiError
from reference_impl.server.service import Service

from .conftest import assert_openai_error, carried, served_prompt

# -- the CI bound: a fixed, derandomized run ---------------------------------------------------------------------
EXAMPLES = 20  # sequences per run
STEPS = 16     # rules per sequence (invariants after each)
PROFILE = "reference-server-stateful"
settings.register_profile(PROFILE, max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True,
                          database=None, deadline=None, suppress_health_check=list(HealthCheck),
                          phases=(Phase.explicit, Phase.generate, Phase.shrink))

MAX_LEN = 512          # room for a few turns with the tool's system prompt (about 190 tokens)
MAX_TOKENS = 6         # generations stay short: the engine decodes token by token on a shared CPU
FORCED_TOKENS = 12     # a named call's arguments ({"c": "a"}) and the end of turn
DOCUMENT_MAX_TOKENS = 4
CHAT, TOKENIZE = "/v1/chat/completions", "/tokenize"
SCHEMA = {"type": "object", "properties": {"c": {"type": "string", "enum": ["a", "b"]}}, "required": ["c"]}
TOOLS = [{"type": "function", "function": {"name": "pick", "description": "pick a letter", "parameters": SCHEMA}}]
TOOL_CHOICES = {"auto": "auto", "none": "none", "named": {"type": "function", "function": {"name": "pick"}},
                "required": "required"}
FINGERPRINT_IDS = [1, 89, 95, 89, 272, 83, 40, 41, 42]  # teacher-forced through /v1/completions: the served weights
TRICKY = ["", " ", "\n\n", "<|im_end|>", "<|im_start|>assistant\n", "<think>", "</think>", "<tool_call>",
          '{"name": "pick", "arguments": {"c": "a"}}', "ü ✓ 🙂 \u200b", "a" * 200]
TEXT = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12))


# -- the server: one hf engine, weights reloadable only under one root -------------------------------------------
@dataclass
class Server:
    client: TestClient
    schema: Any
    model_dir: Path
    vocab: int
    reloads: dict[str, tuple[Any, int]]  # name -> (body, expected status: 200, 400 or 403)
    fingerprints: dict[str, list[float]] = field(default_factory=dict)  # checkpoint -> its served log probs
    operations: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # the document's: label -> (op, strategy)


def _checkpoints(base: Path, model_dir: Path) -> dict[str, tuple[Any, int]]:
    """Reload targets: two good checkpoints (a new one, the model's own) and every way a path or a checkpoint can
    be wrong. Only ``root`` (and the model's directory) may be read."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    root, outside = base / "root", base / "outside"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(root / "step-1", safe_serialization=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    broken = {
        "extra-tensor": {**state, "not.a.weight": torch.zeros(2)},        # new weights + one the model lacks
        "wrong-shape": {**state, "lm_head.weight": torch.zeros(3, 3)},    # new weights + one of the wrong shape
    }
    for name, tensors in broken.items():
        (root / name).mkdir()
        save_file(tensors, root / name / "model.safetensors")
    good = (root / "step-1" / "model.safetensors").read_bytes()
    (root / "truncated").mkdir()  # what a trainer that is still writing leaves
    (root / "truncated" / "model.safetensors").write_bytes(good[: len(good) // 2])
    (root / "garbage").mkdir()
    (root / "garbage" / "model.safetensors").write_bytes(b"these are not weights")
    (root / "empty").mkdir()
    shutil.copytree(root / "step-1", outside)
    os.symlink(outside, root / "link-out")
    return {
        "step-1": ({"path": str(root / "step-1")}, 200),
        "own": ({"path": str(model_dir)}, 200),
        "outside": ({"path": str(outside)}, 403),
        "dot-dot": ({"path": f"{root}/../outside"}, 403),
        "symlink-out": ({"path": str(root / "link-out")}, 403),
        "relative": ({"path": "step-1"}, 403),
        "etc": ({"path": "/etc"}, 403),
        "missing": ({"path": str(root / "no-such-step")}, 400),
        "a-file": ({"path": str(root / "step-1" / "model.safetensors")}, 400),
        "empty-dir": ({"path": str(root / "empty")}, 400),
        "extra-tensor": ({"path": str(root / "extra-tensor")}, 400),
        "wrong-shape": ({"path": str(root / "wrong-shape")}, 400),
        "truncated": ({"path": str(root / "truncated")}, 400),
        "garbage": ({"path": str(root / "garbage")}, 400),
        "nul-byte": ({"path": f"{root}/step-1\x00"}, 400),
        "name-too-long": ({"path": f"{root}/{'a' * 5000}"}, 400),
        "path-int": ({"path": 3}, 400),
        "path-null": ({"path": None}, 400),
        "path-list": ({"path": [str(model_dir)]}, 400),
        "no-path": ({}, 400),
        "body-list": ([str(model_dir)], 400),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from transformers import AutoTokenizer

    model_dir = fixture_path("tiny-chatml")
    base = tmp_path_factory.mktemp("stateful-fuzz")
    reloads = _checkpoints(base, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    engine = HFEngine(model_dir, eos_token_id=tokenizer.eos_token_id, max_model_len=MAX_LEN)
    service = Service(tokenizer, engine, served_model_name="tiny", model_path=str(model_dir),
                      reasoning_parser="qwen3", tool_parser="hermes", weights_roots=[base / "root"])
    app = create_app(service)
    with TestClient(app) as client:
        srv = Server(client, schemathesis.openapi.from_asgi("/openapi.json", app), model_dir, engine.vocab_size,
                     reloads)
        srv.fingerprints["own"] = fingerprint(client)
        for result in srv.schema.get_all_operations():
            operation = result.ok()
            srv.operations[operation.label] = (operation, operation.as_strategy())
        yield srv


# -- requests and what every answer must be ----------------------------------------------------------------------
def post(client: TestClient, route: str, body: Any):
    """JSON as Python writes it: NaN and Infinity go out as the bare words, as some clients send them."""
    return client.post(route, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def judged(response, what: str):
    assert response.status_code < 500, f"{what}: HTTP {response.status_code} {response.text[:800]}"
    assert_openai_error(response)
    return response


def fingerprint(client: TestClient) -> list[float]:
    r = post(client, "/v1/completions", {"prompt": FINGERPRINT_IDS, "max_tokens": 0, "prompt_logprobs": 0})
    assert r.status_code == 200, r.text
    return [e[str(t)]["logprob"] for e, t in zip(r.json()["choices"][0]["prompt_logprobs"][1:], FINGERPRINT_IDS[1:])]


def is_context_overflow(response) -> bool:
    """Gym's match (contract §5): a 400 whose text says "context length" ends the episode instead of failing it."""
    return response.status_code == 400 and "context length" in response.json()["error"]["message"]


def last_carrier(messages: list[Any]) -> dict | None:
    carriers = [m for m in messages if isinstance(m, dict) and "prompt_token_ids" in m]
    return carriers[-1] if carriers else None


@dataclass
class Rollout:
    """One Gym episode: the messages its next request starts with (the last reply already carried back)."""

    history: list[dict]
    tools: list | None
    tool_choice: Any
    kwargs: dict | None
    gym: bool                   # carried back through Gym's Responses items, else verbatim
    seed: int
    prefix: list[int] = field(default_factory=list)  # P + G of the last reply
    calls: list[dict] = field(default_factory=list)  # the last reply's tool calls, each awaiting its output

    def body(self, messages: list, max_tokens: int, *, probe: bool = False) -> dict:
        """The training body; a ``probe`` (a damaged variant) only needs the served prompt, so it keeps max_tokens."""
        extra: dict[str, Any] = {"tool_choice": self.tool_choice, "seed": self.seed}
        if self.tool_choice == "required":
            extra["parallel_tool_calls"] = False
        if isinstance(self.tool_choice, dict) and not probe:
            max_tokens = FORCED_TOKENS
        return training_body(messages, model="tiny", tools=self.tools, max_tokens=max_tokens,
                             chat_template_kwargs=self.kwargs, **extra)

    def next_turn(self, text: str) -> list[dict]:
        """Gym's next input: one function_call_output per tool call, else the user's turn."""
        if self.calls:
            return [{"role": "tool", "tool_call_id": c["id"], "content": json.dumps({"result": text})}
                    for c in self.calls]
        return [{"role": "user", "content": text}]


def carried_back(reply: dict, *, gym: bool) -> list[dict]:
    """The reply as the next request carries it: through Gym's Responses items and back, or verbatim."""
    message = reply["choices"][0]["message"]
    if gym:
        return to_messages(to_output_items(message, choose(read_sources(reply))))
    keep = ("role", "content", "tool_calls", "reasoning_content", "prompt_token_ids", "generation_token_ids",
            "generation_log_probs")
    return [{k: message[k] for k in keep if message.get(k) is not None}]


def mutate_bundle(msg: dict, kind: str, data, vocab: int, other: dict | None) -> bool:
    """Damage the carried bundle in ``msg`` in place; True when the protocol rules the result out (must be 400)."""
    gen, lps, prompt = msg["generation_token_ids"], msg["generation_log_probs"], msg["prompt_token_ids"]
    if kind == "drop-field":
        del msg[data.draw(st.sampled_from(["prompt_token_ids", "generation_token_ids", "generation_log_probs"]))]
        return True
    if kind == "null-field":
        msg[data.draw(st.sampled_from(["generation_token_ids", "generation_log_probs"]))] = None
        return True
    if kind == "empty-prompt":
        msg["prompt_token_ids"] = []
        return True
    if kind == "empty-generation":
        msg["generation_token_ids"], msg["generation_log_probs"] = [], []
        return True
    if kind == "logprobs-short":
        msg["generation_log_probs"] = lps[:-1]
        return True
    if kind == "logprob-strings":
        msg["generation_log_probs"] = [data.draw(st.sampled_from(["NaN", "nan", "-inf", "Infinity", "1e309", ""]))
                                       for _ in lps]
        return True
    if kind == "logprob-nonfinite":  # numbers, though not finite ones: the server never reads carried log probs
        msg["generation_log_probs"] = [data.draw(st.sampled_from([math.nan, math.inf, -math.inf, 3.5, -1e308]))
                                       for _ in lps]
        return False
    if kind == "out-of-vocabulary":
        bad = data.draw(st.sampled_from([vocab, vocab + 7, -1, 2**31, 2**63, 10**30]))
        target = data.draw(st.sampled_from(["prompt_token_ids", "generation_token_ids"]))
        ids = msg[target]
        ids[data.draw(st.integers(0, len(ids) - 1))] = bad
        return True
    if kind == "wrong-type":
        target = data.draw(st.sampled_from(["prompt_token_ids", "generation_token_ids", "generation_log_probs"]))
        values = msg[target]
        msg[target] = data.draw(st.sampled_from([
            "1, 2, 3", [True] * len(values), {"0": 1}, [[x] for x in values], 7, [str(x) for x in values],
            *([[x + 0.5 for x in values]] if target != "generation_log_probs" else [])]))  # floats are log probs
        return True
    if kind == "edit-generation-id":
        i = data.draw(st.integers(0, len(gen) - 1))
        gen[i] = data.draw(st.integers(0, vocab - 1))
        return False
    if kind == "truncate-generation":
        keep = data.draw(st.integers(1, max(1, len(gen) - 1)))
        msg["generation_token_ids"], msg["generation_log_probs"] = gen[:keep], lps[:keep]
        return False
    if kind == "truncate-prompt":
        cut = data.draw(st.integers(1, max(1, len(prompt) - 1)))
        msg["prompt_token_ids"] = prompt[cut:] if data.draw(st.booleans()) else prompt[:cut]
        return False
    if kind == "huge-prompt":  # within the body limit, far over the context
        msg["prompt_token_ids"] = prompt * data.draw(st.sampled_from([20, 200]))
        return False
    if kind == "swap-bundle":
        if other is not None:
            for k in ("prompt_token_ids", "generation_token_ids", "generation_log_probs"):
                msg[k] = list(other[k])
        return False
    if kind == "content-rewritten":  # a harness summarised the turn and kept the ids (P20)
        msg["content"] = "Summary: the assistant asked for clarification."
        return True
    raise AssertionError(kind)


BUNDLE_MUTATIONS = ["drop-field", "null-field", "empty-prompt", "empty-generation", "logprobs-short",
                    "logprob-strings", "logprob-nonfinite", "out-of-vocabulary", "wrong-type", "edit-generation-id",
                    "truncate-generation", "truncate-prompt", "huge-prompt", "swap-bundle", "content-rewritten",
                    "bundle-on-user", "id-less-assistant-after"]
TOOL_MUTATIONS = ["duplicate", "missing", "unknown-id", "no-id", "parts", "number", "with-bundle"]
GOOD_RELOADS = ["step-1", "own"]
HOSTILE_RELOADS = ["outside", "dot-dot", "symlink-out", "relative", "etc", "missing", "a-file", "empty-dir",
                   "extra-tensor", "wrong-shape", "truncated", "garbage", "nul-byte", "name-too-long", "path-int",
                   "path-null", "path-list", "no-path", "body-list"]
# The hostile rules try every variant of their family at once (they leave the server's state as it was), so they
# cost tens of requests a step; hypothesis's swarm testing can make one rule most of a sequence, so each is capped
# per sequence to keep the run's time bounded whatever the draws.
CAPS = {"damaged_bundles": 1, "damaged_tool_outputs": 1, "extreme_history": 1, "hostile_reloads": 1}
HISTORIES = ["empty", "at-limit", "over-limit", "one-huge-message", "system-only", "carrier-only"]


class GymTraffic(RuleBasedStateMachine):
    """Gym's traffic against one server, with hostile variants; ``server`` is set by the test below."""

    server: Server
    seen: Counter  # what the run exercised: rules, damage kinds, continuity checks (asserted by the test below)
    rollouts = Bundle("rollouts")

    def __init__(self) -> None:
        super().__init__()
        self.client = self.server.client
        health = self.client.get("/health").json()
        self.version = health["weight_version"]     # what /health must say: +1 per accepted reload, else unchanged
        self.loaded = "own"                         # the previous sequence's teardown restored the model's weights
        self.started: list[Rollout] = []
        self.spent: Counter = Counter()  # the costly hostile rules' steps in this sequence (see CAPS)
        assert fingerprint(self.client) == self.server.fingerprints["own"], "a sequence starts from other weights"

    # -- helpers ---------------------------------------------------------------------------------------------
    def chat(self, body: dict, what: str):
        """A chat call and /tokenize for the same body, judged together (contract §8.6: the same correction)."""
        tok = judged(post(self.client, TOKENIZE, tokenize_body(body)), f"{what} (/tokenize)")
        r = judged(post(self.client, CHAT, body), what)
        if r.status_code == 200:
            reply = r.json()
            bundle = choose(read_sources(reply))  # Gym could read it: the three sources agree
            prompt = bundle.prompt_token_ids
            assert all(math.isfinite(x) and x <= 0 for x in bundle.generation_log_probs), bundle.generation_log_probs
            assert len(prompt) + len(bundle.generation_token_ids) <= MAX_LEN
            assert tok.status_code == 200 and tok.json()["tokens"] == prompt, f"{what}: /tokenize disagrees with chat"
            carrier = last_carrier(body["messages"])
            if carrier is not None:  # the on-policy correction: the served prompt continues the carried ids
                head = [*carrier["prompt_token_ids"], *carrier["generation_token_ids"]]
                assert prompt[:len(head)] == head, f"{what}: the served prompt does not start with the carried P + G"
                self.seen["continuity checked"] += 1
        elif is_context_overflow(r):
            assert tok.status_code == 200 and tok.json()["count"] >= MAX_LEN, (what, tok.text[:300])
        else:
            assert tok.status_code == r.status_code, f"{what}: chat {r.status_code} {r.text[:300]} but /tokenize " \
                                                     f"{tok.status_code} {tok.text[:300]}"
        return r

    def turn(self, rollout: Rollout, messages: list[dict], max_tokens: int, what: str) -> None:
        """A well-formed step of an episode: answered, or a full context; never refused otherwise."""
        r = self.chat(rollout.body(messages, max_tokens), what)
        if is_context_overflow(r):  # Gym ends the episode; a later step may still send a shorter turn
            self.seen["context full"] += 1
            return
        assert r.status_code == 200, f"{what}: a well-formed rollout step was refused: {r.text[:800]}"
        reply = r.json()
        message = reply["choices"][0]["message"]
        prompt = message["prompt_token_ids"]
        assert prompt[:len(rollout.prefix)] == rollout.prefix, f"{what}: prompt continuity broken"
        if rollout.calls:
            self.seen["tool outputs answered"] += 1
        rollout.history = messages + carried_back(reply, gym=rollout.gym)
        rollout.prefix = [*prompt, *message["generation_token_ids"]]
        rollout.calls = list(message.get("tool_calls") or [])

    def next_messages(self, rollout: Rollout, text: str) -> list[dict]:
        return copy.deepcopy(rollout.history) + rollout.next_turn(text)

    # -- Gym's operations ------------------------------------------------------------------------------------
    def begin(self, text, system, tools, thinking, gym, seed, max_tokens) -> Rollout:
        rollout = Rollout([], TOOLS if tools else None, TOOL_CHOICES.get(tools), None if thinking else
                          {"enable_thinking": False}, gym, seed)
        messages = ([{"role": "system", "content": "Answer briefly."}] if system else []) + \
            [{"role": "user", "content": text}]
        self.turn(rollout, messages, max_tokens, f"first turn (tool_choice {tools})")
        self.started.append(rollout)
        return rollout

    @initialize(target=rollouts, text=TEXT, thinking=st.booleans(), gym=st.booleans(), seed=st.integers(0, 2**16))
    def tool_episode(self, text, thinking, gym, seed):
        """Every sequence has a tool-using episode: a named tool_choice, so even this untrained model calls it."""
        self.seen["tool_episode"] += 1
        return self.begin(text, False, "named", thinking, gym, seed, MAX_TOKENS)

    @rule(target=rollouts, text=TEXT, system=st.booleans(), tools=st.sampled_from([None, *TOOL_CHOICES]),
          thinking=st.booleans(), gym=st.booleans(), seed=st.integers(0, 2**16),
          max_tokens=st.integers(1, MAX_TOKENS))
    def start(self, text, system, tools, thinking, gym, seed, max_tokens):
        self.seen["start"] += 1
        return self.begin(text, system, tools, thinking, gym, seed, max_tokens)

    @rule(rollout=rollouts, text=TEXT, max_tokens=st.integers(1, MAX_TOKENS))
    def continue_rollout(self, rollout, text, max_tokens):
        self.seen["continue_rollout"] += 1
        what = "tool outputs after the reply's tool calls" if rollout.calls else "a user turn after the carried reply"
        self.turn(rollout, self.next_messages(rollout, text), max_tokens, what)

    @precondition(lambda self: self.spent["damaged_bundles"] < CAPS["damaged_bundles"])
    @rule(offset=st.integers(0, len(BUNDLE_MUTATIONS)), other=rollouts, data=st.data())
    def damaged_bundles(self, offset, other, data):
        """Next turns sent once per kind of damage to their carried bundle (the details drawn), the kinds dealt out
        over the sequence's rollouts from a drawn offset: hostile variants leave the server's state as it was, so one
        step tries them all against the state reached."""
        carrying = [r for r in self.started if last_carrier(r.history) is not None]  # (a first turn may overflow)
        if not carrying:
            return
        self.seen["damaged_bundles"] += 1
        self.spent["damaged_bundles"] += 1
        for i, kind in enumerate(BUNDLE_MUTATIONS):
            rollout = carrying[(offset + i) % len(carrying)]
            self.seen[f"bundle: {kind}"] += 1
            self.seen[f"damaged bundle of a tool_choice {json.dumps(rollout.tool_choice)} rollout"] += 1
            messages = self.next_messages(rollout, "next")
            carrier = last_carrier(messages)
            if kind == "bundle-on-user":  # token fields are for assistant messages only (contract §3.3, M9)
                user = next(m for m in messages if m["role"] == "user")
                user.update({k: carrier[k] for k in ("prompt_token_ids", "generation_token_ids",
                                                     "generation_log_probs")})
                must_refuse = True
            elif kind == "id-less-assistant-after":  # an apology the harness wrote after the carrier (P18)
                messages += [{"role": "assistant", "content": "Sorry, let me retry."},
                             {"role": "user", "content": "ok"}]
                must_refuse = True
            else:
                must_refuse = mutate_bundle(carrier, kind, data, self.server.vocab, last_carrier(other.history))
            r = self.chat(rollout.body(messages, 1, probe=True), f"carried bundle damaged ({kind})")
            self.seen[f"bundle {kind}: {r.status_code}"] += 1
            if must_refuse:
                err = r.json().get("error") or {}
                assert r.status_code == 400 and str(err.get("param")).startswith("messages"), \
                    f"a carried bundle with {kind} was not refused: {r.status_code} {r.text[:500]}"

    @precondition(lambda self: any(r.calls for r in self.started)
                  and self.spent["damaged_tool_outputs"] < CAPS["damaged_tool_outputs"])
    @rule(data=st.data())
    def damaged_tool_outputs(self, data):
        """After real tool calls, the outputs sent wrong: duplicated, missing, misaddressed, malformed."""
        rollout = data.draw(st.sampled_from([r for r in self.started if r.calls]), label="rollout with tool calls")
        self.seen["damaged_tool_outputs"] += 1
        self.spent["damaged_tool_outputs"] += 1
        for kind in TOOL_MUTATIONS:
            self.seen[f"tool outputs: {kind}"] += 1
            outputs = rollout.next_turn("sunny")
            if kind == "duplicate":
                outputs = outputs + copy.deepcopy(outputs)
            elif kind == "missing":
                outputs = [{"role": "user", "content": "never mind the tool"}]
            elif kind == "unknown-id":
                outputs[0]["tool_call_id"] = "call_nobody_made"
            elif kind == "no-id":
                del outputs[0]["tool_call_id"]
            elif kind == "parts":
                outputs[0]["content"] = [{"type": "text", "text": "sunny"}]
            elif kind == "number":
                outputs[0]["content"] = 42
            elif kind == "with-bundle":
                outputs[0].update(prompt_token_ids=[1], generation_token_ids=[2], generation_log_probs=[-1.0])
            r = self.chat(rollout.body(copy.deepcopy(rollout.history) + outputs, 1, probe=True),
                          f"tool outputs damaged ({kind})")
            self.seen[f"tool outputs {kind}: {r.status_code}"] += 1
            if kind in ("number", "with-bundle"):
                assert r.status_code == 400, f"a tool output with {kind} was accepted: {r.text[:300]}"

    @precondition(lambda self: self.spent["extreme_history"] < CAPS["extreme_history"])
    @rule()
    def extreme_history(self):
        """Histories at the edges: none, the message limit (far over the context), over it, one huge message, a
        system message alone, a carried assistant turn alone."""
        self.seen["extreme_history"] += 1
        self.spent["extreme_history"] += 1
        for kind in HISTORIES:
            self.seen[f"history {kind}"] += 1
            if kind == "empty":
                messages = []
            elif kind in ("at-limit", "over-limit"):
                messages = [{"role": "user", "content": "a"}] * (MAX_MESSAGES + (kind == "over-limit"))
            elif kind == "one-huge-message":  # several times the context in one turn
                messages = [{"role": "user", "content": "word " * 4_000}]
            elif kind == "system-only":
                messages = [{"role": "system", "content": ""}]
            else:
                carrier = last_carrier(self.started[-1].history) if self.started else None
                messages = [copy.deepcopy(carrier)] if carrier else [{"role": "assistant", "content": ""}]
            body = training_body(messages, model="tiny", max_tokens=1, seed=0)
            if kind == "at-limit":  # rendering 4,096 messages is the costly part: chat only (its 400 needs no render)
                r = judged(post(self.client, CHAT, body), f"history: {kind}")
            else:
                r = self.chat(body, f"history: {kind}")
            if kind in ("empty", "over-limit"):
                assert r.status_code == 400 and r.json()["error"]["param"].startswith("messages"), r.text[:300]
            if kind in ("at-limit", "one-huge-message"):
                assert is_context_overflow(r), r.text[:300]

    @rule(name=st.sampled_from(GOOD_RELOADS))
    def reload(self, name):
        """Weight sync between (or during) rollouts: a new checkpoint, or the model's own directory."""
        self.seen[f"reload {name}"] += 1
        r = judged(post(self.client, "/weights/reload", self.server.reloads[name][0]), f"reload ({name})")
        assert r.status_code == 200, f"reload ({name}): {r.status_code} {r.text[:500]}"
        self.version += 1
        assert r.json()["weight_version"] == self.version
        served = fingerprint(self.client)
        known = self.server.fingerprints.setdefault(name, served)
        assert served == known, f"reload ({name}) does not serve that checkpoint's weights"
        self.loaded = name

    @precondition(lambda self: self.spent["hostile_reloads"] < CAPS["hostile_reloads"])
    @rule()
    def hostile_reloads(self):
        """Every bad reload: refused with the right status, the version and the served weights unchanged."""
        self.seen["hostile_reloads"] += 1
        self.spent["hostile_reloads"] += 1
        for name in HOSTILE_RELOADS:
            self.seen[f"reload: {name}"] += 1
            body, expected = self.server.reloads[name]
            r = judged(post(self.client, "/weights/reload", body), f"reload ({name})")
            assert r.status_code == expected, f"reload ({name}): {r.status_code} {r.text[:500]}"
            err = r.json()["error"]
            assert err["param"] in ("path", None) and (expected != 403 or err["type"] == "permission_error"), err
        # the defective checkpoints reach the engine: a half-done load would show in the served log probs
        assert fingerprint(self.client) == self.server.fingerprints[self.loaded], \
            "a refused reload (a defective checkpoint: extra-tensor, wrong-shape, truncated, garbage) changed the " \
            "served weights"
        assert self.client.get("/weights").json() == {"weight_version": self.version}

    @rule(data=st.data())
    def document_request(self, data):
        """A request drawn from the server's own OpenAPI document, anywhere in a sequence (generation bounded)."""
        label = data.draw(st.sampled_from(sorted(self.server.operations)), label="operation")
        self.seen["document_request"] += 1
        operation, strategy = self.server.operations[label]
        case = data.draw(strategy, label="case")
        if operation.path in (CHAT, "/v1/completions") and isinstance(case.body, dict):
            for key in ("max_tokens", "max_completion_tokens"):
                value = case.body.get(key)
                if type(value) is int and value > DOCUMENT_MAX_TOKENS:
                    case.body[key] = DOCUMENT_MAX_TOKENS
            case.body.setdefault("max_tokens", DOCUMENT_MAX_TOKENS)
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert_openai_error(response)
        if operation.path == "/weights/reload" and response.status_code == 200:  # not expected: roots are tight
            self.version += 1
            self.loaded = "document"
            self.server.fingerprints["document"] = fingerprint(self.client)

    # -- after every step --------------------------------------------------------------------------------------
    @invariant()
    def health_answers_and_the_version_never_goes_down(self):
        r = self.client.get("/health")
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        assert r.json()["weight_version"] == self.version, (r.json(), self.version)

    def teardown(self):
        body = training_body([{"role": "user", "content": "hi"}], model="tiny", max_tokens=3)
        r = post(self.client, CHAT, body)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["generation_token_ids"], r.text[:500]
        if self.loaded != "own":  # the next sequence starts from the model's own weights
            assert post(self.client, "/weights/reload", {"path": str(self.server.model_dir)}).status_code == 200


RULES = ["tool_episode", "start", "continue_rollout", "damaged_bundles", "damaged_tool_outputs", "extreme_history",
         "reload step-1", "reload own", "hostile_reloads", "document_request"]


@pytest.mark.slow
def test_gym_traffic_with_hostile_variations_keeps_every_invariant(server):
    GymTraffic.server, GymTraffic.seen = server, Counter()
    started = time.monotonic()
    run_state_machine_as_test(GymTraffic, settings=settings.get_profile(PROFILE))
    seen = GymTraffic.seen
    print(f"stateful fuzz: {EXAMPLES} sequences of {STEPS} steps in {time.monotonic() - started:.0f} s;",
          ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
    # the run is derandomized: these hold for every run of this code, and fail when an edit stops it exercising
    # what it is for (every rule, carried bundles answered and checked, tool outputs after real tool calls)
    assert all(seen[r] for r in RULES), {r: seen[r] for r in RULES}
    hostile = [f"bundle: {k}" for k in BUNDLE_MUTATIONS] + [f"tool outputs: {k}" for k in TOOL_MUTATIONS] + \
        [f"reload: {k}" for k in HOSTILE_RELOADS] + [f"history {k}" for k in HISTORIES]
    assert all(seen[k] for k in hostile), [k for k in hostile if not seen[k]]
    assert seen["continuity checked"] >= 20 and seen["tool outputs answered"] >= 1, seen


# -- found by the stateful fuzz, kept as explicit cases -------------------------------------------------------------
def _enc(renderer, text: str) -> list[int]:
    return list(renderer.tokenizer.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("arguments, accepted", [('{"c": "a"}', True), ('{"c": "b"}', False)],
                         ids=["as-generated", "arguments-edited"])
def test_a_named_tool_call_sent_back_is_spliced_and_an_edited_one_refused(chatml, arguments, accepted):
    # Under a named tool_choice decoding is constrained to the arguments, so the ids hold {"c": "a"} and no function
    # name: the turn sent back unchanged was refused as edited (P20) because "pick" is not in the ids' text.
    msgs = [{"role": "user", "content": "Pick."}]
    p1 = served_prompt(chatml, msgs, tools=TOOLS)
    g1 = _enc(chatml, '{"c": "a"}') + [chatml.eos_id]
    call = {"id": "call_0", "type": "function", "function": {"name": "pick", "arguments": arguments}}
    msgs += [carried(p1, g1, chatml, content=None, tool_calls=[call]),
             {"role": "tool", "tool_call_id": "call_0", "content": "ok"}]
    if accepted:
        p2 = served_prompt(chatml, msgs, tools=TOOLS)
        assert p2[:len(p1) + len(g1)] == p1 + g1
    else:  # the exemption is for the arguments the ids hold, byte for byte (whitespace aside), and nothing else
        with pytest.raises(ApiError, match="non-monotonic"):
            served_prompt(chatml, msgs, tools=TOOLS)


@pytest.mark.parametrize("gym", [False, True], ids=["verbatim", "through-gym-items"])
def test_a_named_tool_call_round_trip_keeps_continuity(server, gym):
    rollout = Rollout([], TOOLS, TOOL_CHOICES["named"], {"enable_thinking": False}, gym, seed=3)
    body = rollout.body([{"role": "user", "content": "Pick."}], MAX_TOKENS)
    reply = post(server.client, CHAT, body).json()
    message = reply["choices"][0]["message"]
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["pick"], message
    rollout.calls = message["tool_calls"]
    messages = body["messages"] + carried_back(reply, gym=gym) + rollout.next_turn("a")
    r = post(server.client, CHAT, rollout.body(messages, 2))
    assert r.status_code == 200, r.text
    head = message["prompt_token_ids"] + message["generation_token_ids"]
    assert r.json()["prompt_token_ids"][:len(head)] == head


@pytest.mark.parametrize("name", ["nul-byte", "name-too-long", "truncated", "garbage", "extra-tensor", "wrong-shape"])
def test_a_refused_reload_is_a_400_and_leaves_the_weights_alone(server, name):
    # nul-byte, name-too-long: the path check raised out of the handler (HTTP 500); truncated, garbage: safetensors'
    # error escaped (500); wrong-shape: torch's size mismatch escaped (500) after the other tensors were copied;
    # extra-tensor: refused only after the known tensors were loaded, new weights served under the old version.
    client = server.client
    version, served = client.get("/health").json()["weight_version"], fingerprint(client)
    body, _ = server.reloads[name]
    r = post(client, "/weights/reload", body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "path", r.text[:500]
    assert client.get("/health").json()["weight_version"] == version
    assert fingerprint(client) == served
