"""Every mutant has exactly its defect, the reference has none: one direct probe per mutant (issue 5).

The whole zoo (``reference_impl.mutants.host``) runs in-process on the transformers engine, lifespan
included. ``PROBES[name](zoo, mount)`` returns True when ``mount`` shows mutant ``name``'s defect; each
test asserts it on the mutant's mount and not on ``/reference``. A new defect module without a probe
here fails ``test_every_mutant_has_a_probe``.
"""
from __future__ import annotations

import argparse
import json
import re

import pytest
from starlette.testclient import TestClient

from fixtures import fixture_path
from reference_impl.mutants import discover
from reference_impl.mutants.host import REFERENCE, build_app
from reference_impl.server.cli import add_arguments

MAX_LEN = 1024
EOS = 2
TRAIN = {"model": "tiny", "logprobs": True, "top_logprobs": 0, "return_tokens_as_token_ids": True,
         "return_token_ids": True, "temperature": 1.0, "top_p": 1.0}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
SPLIT_THE = [264, 263]  # " the" sampled as two pieces; the tokenizer encodes it as one id (265)
ODD_TOOL_CALL = '<tool_call>\n{"arguments":{"city":  "Rome"}, "name":"get_weather"}\n</tool_call>'


@pytest.fixture(scope="module")
def zoo():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--model", str(fixture_path("tiny-chatml")), "--engine", "hf", "--served-model-name",
                              "tiny", "--max-model-len", str(MAX_LEN)])
    with TestClient(build_app(args)) as client:
        client.tok = _tokenizer()
        yield client


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(fixture_path("tiny-chatml"))


# -- helpers --------------------------------------------------------------------------------------

def chat(z, mount, messages, **kw):
    body = {**TRAIN, "messages": messages, "max_tokens": 1, "seed": 7, **kw}
    body = {k: v for k, v in body.items() if v is not None}
    r = z.post(f"/{mount}/v1/chat/completions", json=body)
    return r.status_code, r.json()


def tokenize(z, mount, messages, **kw):
    r = z.post(f"/{mount}/tokenize", json={"model": "tiny", "messages": messages, **kw})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def rollout(z, mount, turns, tools=None):
    """Build a history on ``mount``: ("user", text), ("tool", text), ("say", message), or ("gen", ids, message):
    a replayed generation whose prompt is what the mount serves for the history so far (its /tokenize)."""
    messages, carried = [], []
    for kind, *rest in turns:
        if kind == "gen":
            ids, msg = rest
            prompt = tokenize(z, mount, messages, tools=tools)
            messages.append({"role": "assistant", **msg, "prompt_token_ids": prompt, "generation_token_ids": ids,
                             "generation_log_probs": [-1.0] * len(ids)})
            carried.append(prompt + ids)
        elif kind == "say":
            messages.append({"role": "assistant", **rest[0]})
        else:
            messages.append({"role": kind, "content": rest[0], **({"tool_call_id": "call_0"} if kind == "tool" else {})})
    return messages, carried


def gen_text(z, text, eos=True):
    return z.tok.encode(text, add_special_tokens=False) + ([EOS] if eos else [])


def tool_msg(city="Rome"):
    return {"content": "", "tool_calls": [{"id": "call_0", "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": city})}}]}


def served(z, mount, messages, **kw):
    status, data = chat(z, mount, messages, **kw)
    assert status == 200, data
    return data["choices"][0]["message"]["prompt_token_ids"]


def split_history(z):
    return [("user", "Say the word."), ("gen", SPLIT_THE + [EOS], {"content": z.tok.decode(SPLIT_THE)}),
            ("user", "Thanks.")]


def rescored(z, mount, prompt, gen):
    r = z.post(f"/{mount}/v1/completions", json={"model": "tiny", "prompt": prompt + gen, "max_tokens": 1,
                                                 "temperature": 1.0, "prompt_logprobs": 0})
    assert r.status_code == 200, r.text
    rows = r.json()["choices"][0]["prompt_logprobs"]
    return [rows[len(prompt) + i][str(t)]["logprob"] for i, t in enumerate(gen)]


def sampled(z, mount, n=8):
    status, data = chat(z, mount, [{"role": "user", "content": "Describe the sea."}], max_tokens=n)
    assert status == 200, data
    msg = data["choices"][0]["message"]
    assert len(msg["generation_token_ids"]) >= 2, "probe needs two generated tokens; change the seed"
    return msg["prompt_token_ids"], msg["generation_token_ids"], msg["generation_log_probs"]


# -- probes: True when the mount shows the defect -------------------------------------------------

def p_not_spliced(z, mount):
    messages, (m1,) = rollout(z, mount, split_history(z))
    return served(z, mount, messages)[:len(m1)] != m1


def p_strip_reasoning(z, mount):
    text = "<think>\nTwo plus two makes four.\n</think>\n\nIt is 4."
    messages, _ = rollout(z, mount, [("user", "What is 2+2?"), ("gen", gen_text(z, text), {
        "content": "It is 4.", "reasoning_content": "Two plus two makes four."}), ("user", "And 3+3?")])
    return "Two plus two makes four." not in z.tok.decode(served(z, mount, messages))


def p_tool_json(z, mount):
    turns = [*split_history(z)[:2], ("user", "Weather in Rome?"), ("gen", gen_text(z, ODD_TOOL_CALL), tool_msg()),
             ("tool", "21 C")]
    messages, (m1, m2) = rollout(z, mount, turns, tools=TOOLS)
    prompt = served(z, mount, messages, tools=TOOLS)
    assert prompt[:len(m1)] == m1, "every turn without a tool call is still spliced"
    return prompt[:len(m2)] != m2


def _after_eos(z, mount):
    messages, (m1,) = rollout(z, mount, [("user", "Hi."), ("gen", gen_text(z, "Hello there."), {"content": "Hello there."}),
                                         ("user", "Bye.")])
    prompt = served(z, mount, messages)
    assert prompt[:len(m1)] == m1
    return prompt[len(m1)]


def p_no_separator(z, mount):
    return z.tok.decode([_after_eos(z, mount)]) != "\n"


def p_double_eos(z, mount):
    return _after_eos(z, mount) == EOS


def p_decode_prefix(z, mount):
    messages, _ = rollout(z, mount, [("user", "Weather in Rome?"), ("gen", gen_text(z, ODD_TOOL_CALL), tool_msg()),
                                     ("tool", "21 C")], tools=TOOLS)
    status, data = chat(z, mount, messages, tools=TOOLS)
    return status == 400 and "non-monotonically" in data["error"]["message"]


def p_last_eos(z, mount):
    thought = "I add two and two."  # stripped, it is longer than the new user turn: that turn's EOS lands inside len(TP)
    messages, _ = rollout(z, mount, [("user", "What is 2+2?"), ("gen", gen_text(z, f"<think>\n{thought}\n</think>\n\n4"),
                                     {"content": "4", "reasoning_content": thought}), ("user", "Why?")])
    return "Why?" not in z.tok.decode(served(z, mount, messages))


def p_drop_between(z, mount):
    texts = ["thirty-five degrees", "Sorry, the harness summarised this.", "Say it in Fahrenheit."]
    messages, _ = rollout(z, mount, [("user", "Weather in Cairo?"), ("gen", gen_text(z, ODD_TOOL_CALL), tool_msg()),
                                     ("tool", texts[0]), ("say", {"content": texts[1]}), ("user", texts[2])], tools=TOOLS)
    status, data = chat(z, mount, messages, tools=TOOLS)
    if status != 200:
        return False  # refused loudly: the reference's answer
    decoded = z.tok.decode(data["choices"][0]["message"]["prompt_token_ids"])
    return any(t not in decoded for t in texts)


def p_first_carrier(z, mount):
    """Two carried turns, the second a non-canonical split: only its own ids keep the split in the next prompt."""
    turns = [("user", "Hi."), ("gen", gen_text(z, "Hello there."), {"content": "Hello there."}), *split_history(z)]
    messages, (_, m2) = rollout(z, mount, turns)
    return served(z, mount, messages)[:len(m2)] != m2


def p_edited_spliced(z, mount):
    text = "The sea is wide and deep."
    messages, (m1,) = rollout(z, mount, [("user", "Describe the sea."), ("gen", gen_text(z, text), {"content": text}),
                                         ("user", "And the sky?")])
    messages[1]["content"] = "[summary of the earlier answer]"
    status, data = chat(z, mount, messages)
    return status == 200 and data["choices"][0]["message"]["prompt_token_ids"][:len(m1)] == m1


def p_false_refusal(z, mount):
    """A generation with a think block mid-text, sent back verbatim: the endpoint must continue it."""
    text = "abc<think> Alexandria</think> def"
    messages, (m1,) = rollout(z, mount, [("user", "Repeat."), ("gen", gen_text(z, text), {"content": text}),
                                         ("user", "Thanks.")])
    status, _ = chat(z, mount, messages)
    return status == 400


def p_stop_id_not_a_turn_closer(z, mount):
    """A turn closed by <|endoftext|> (a stop id in Qwen3's generation config), then one closed by EOS: the
    call after next must still be served."""
    endoftext = z.tok.convert_tokens_to_ids("<|endoftext|>")
    messages, _ = rollout(z, mount, [("user", "Hi."), ("gen", gen_text(z, "hello", eos=False) + [endoftext],
                                                          {"content": "hello"}),
                                     ("user", "Again."), ("gen", gen_text(z, "sure"), {"content": "sure"}),
                                     ("user", "Thanks.")])
    status, _ = chat(z, mount, messages)
    return status == 400


def p_empty_prefix(z, mount):
    empty = {"prompt_token_ids": [], "generation_token_ids": [], "generation_log_probs": []}
    messages, (m1,) = rollout(z, mount, [*split_history(z), ("say", {"content": "Fine.", **empty}), ("user", "Ok.")])
    explicit, _ = rollout(z, mount, split_history(z))
    answers = [chat(z, mount, messages), chat(z, mount, explicit, required_prefix_token_ids=[])]
    if any(status != 200 for status, _ in answers):
        assert all(status == 400 for status, _ in answers)
        return False
    return all(d["choices"][0]["message"]["prompt_token_ids"][:len(m1)] != m1 for _, d in answers)


def _message(z, mount):
    status, data = chat(z, mount, [{"role": "user", "content": "Say something."}], max_tokens=6)
    assert status == 200, data
    return data, data["choices"][0]["message"]


def p_length_mismatch(z, mount):
    _, msg = _message(z, mount)
    return len(msg["generation_token_ids"]) != len(msg["generation_log_probs"])


def p_partial_bundle(z, mount):
    _, msg = _message(z, mount)
    return "generation_token_ids" in msg and "generation_log_probs" not in msg


def p_bundle_disagrees(z, mount):
    data, msg = _message(z, mount)
    return msg["generation_token_ids"] != data["choices"][0]["token_ids"]


def p_usage(z, mount):
    data, msg = _message(z, mount)
    return data["usage"]["prompt_tokens"] != len(msg["prompt_token_ids"]) or \
        data["usage"]["completion_tokens"] != len(msg["generation_token_ids"])


def p_shifted(z, mount):
    prompt, gen, lps = sampled(z, mount)
    return max(abs(a - b) for a, b in zip(rescored(z, mount, prompt, gen), lps)) > 1e-3


def p_raw(z, mount):
    """E20: at temperature 0.5 the differences between top alternatives are the τ=1 ones, not doubled."""
    def top(temp):
        status, data = chat(z, mount, [{"role": "user", "content": "Pick a number."}], temperature=temp, top_logprobs=5)
        assert status == 200, data
        entry = data["choices"][0]["logprobs"]["content"][0]
        return {e["token"]: e["logprob"] for e in entry["top_logprobs"]}, entry["logprob"]
    (base, _), (hot, sampled_lp) = top(1.0), top(0.5)
    common = [t for t in hot if t in base]
    ref = max(common, key=base.get)
    raw_err = max(abs((hot[t] - hot[ref]) - (base[t] - base[ref])) for t in common)
    return raw_err < 1e-4 and len(common) >= 2


def p_tokenize(z, mount):
    messages, _ = rollout(z, mount, split_history(z))
    return tokenize(z, mount, messages) != served(z, mount, messages)


def p_overflow(z, mount):
    status, data = chat(z, mount, [{"role": "user", "content": "word " * (2 * MAX_LEN)}])
    assert status == 500 or (status == 400 and "context length" in data["error"]["message"]), data
    return status == 500


def p_top_null(z, mount):
    status, data = chat(z, mount, [{"role": "user", "content": "Hi."}], top_logprobs=None)
    if status == 400:
        return False
    choice = data["choices"][0]
    return choice["logprobs"] is None and "generation_token_ids" not in choice["message"]


def p_stale(z, mount):
    """Log probs disagree with teacher forcing under the current weights (the reference engine's)."""
    prompt, gen, lps = sampled(z, mount)
    return max(abs(a - b) for a, b in zip(rescored(z, REFERENCE, prompt, gen), lps)) > 0.05


def p_oov(z, mount):
    gen = gen_text(z, "Hi", eos=False) + [1005, EOS]  # 1005: valid model id, beyond the 1000-id tokenizer
    messages, (m1,) = rollout(z, mount, [("user", "Hello."), ("gen", gen, {"content": z.tok.decode(gen[:-1])}),
                                         ("user", "Again.")])
    status, data = chat(z, mount, messages)
    if status == 200:
        assert data["choices"][0]["message"]["prompt_token_ids"][:len(m1)] == m1
        return False
    return status == 400 and "Token id 1005 is out of vocabulary" in data["error"]["message"]


def p_truncated_eos(z, mount):
    """P04: after a generation cut by max_tokens (no EOS), the template's end-of-turn token closes the turn."""
    gen = gen_text(z, "Once upon a time there was", eos=False)
    messages, (m1,) = rollout(z, mount, [("user", "Tell me a story."), ("gen", gen, {"content": z.tok.decode(gen)}),
                                         ("user", "Continue.")])
    prompt = served(z, mount, messages)
    assert prompt[:len(m1)] == m1
    return prompt[len(m1)] != EOS


def p_token_strings(z, mount):
    status, data = chat(z, mount, [{"role": "user", "content": "Say something."}], max_tokens=4)
    assert status == 200, data
    entries = data["choices"][0]["logprobs"]["content"]
    return not all(re.fullmatch(r"token_id:\d+", e["token"]) for e in entries)


def p_finish_reason(z, mount):
    status, data = chat(z, mount, [{"role": "user", "content": "Hi."}], max_tokens=4, seed=16)
    assert status == 200, data
    choice = data["choices"][0]
    assert choice["message"]["generation_token_ids"][-1] == EOS, "probe needs a generation ending on EOS; change the seed"
    return choice["finish_reason"] != "stop"


def p_rejects_token_fields(z, mount):
    messages, _ = rollout(z, mount, split_history(z))
    status, _ = chat(z, mount, messages)
    return status == 400


def p_tokenize_shape(z, mount):
    r = z.post(f"/{mount}/tokenize", json={"model": "tiny", "messages": [{"role": "user", "content": "Hi."}]})
    data = r.json()
    return r.status_code != 200 or not isinstance(data.get("tokens"), list) or data.get("count") != len(data["tokens"])


def p_models_id(z, mount):
    listed = z.get(f"/{mount}/v1/models").json()["data"][0]["id"]
    status, _ = chat(z, mount, [{"role": "user", "content": "Hi."}], model=listed)
    return status == 404


def p_tool_args_object(z, mount):
    """The hf engine samples no tool call, so the response layer is probed directly with one (the reference
    mount has no tamper step at all)."""
    mutant = MUTANTS.get(mount)
    if mutant is None or not hasattr(mutant.module.Mutant, "tamper"):
        return False
    response = {"choices": [{"message": {"tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]}}]}
    mutant.module.Mutant.tamper(None, response, {})
    return not isinstance(response["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"], str)


def p_rejects_n(z, mount):
    status, _ = chat(z, mount, [{"role": "user", "content": "Say hi."}], n=1)
    return status == 400


def _side_by_side(z, mount, n, **kw):
    """``n`` chat calls at once (threads through the one TestClient): [(messages, status, data)]."""
    from concurrent.futures import ThreadPoolExecutor

    asks = [[{"role": "user", "content": f"Session {i}: name a colour."}] for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(lambda m: chat(z, mount, m, seed=None, **kw), asks))
    return [(m, *a) for m, a in zip(asks, answers)]


def p_prompt_buffer(z, mount):
    """Side by side, some call is served a prompt other than its own (the one /tokenize gives its messages)."""
    for messages, status, data in _side_by_side(z, mount, 6, max_tokens=24):
        if status == 200 and data["prompt_token_ids"] != tokenize(z, mount, messages):
            return True
    return False


def p_overflow_under_load(z, mount):
    """Twelve calls at once: some get HTTP 500 (the queue holds 8)."""
    return any(status == 500 for _, status, _ in _side_by_side(z, mount, 12, max_tokens=24))


def p_refit_mid_generation(z, mount):
    """A reload sent behind six running generations answers before they have all ended (nothing waits for them).
    The reload is sent once all six have reached the engine (a fixed pause let a slow machine send it before the
    last had arrived, and the reference, rightly, served that one after the reload). A generation's end is taken in
    the engine, not when its client thread wakes: on a busy machine a thread woke after the reload's answer although
    its generation had ended before it, and the reference seemed to show the defect."""
    import threading
    import time

    engine = next(r.app for r in z.app.routes if getattr(r, "path", None) == f"/{mount}").state.service.engine
    arrived: list[int] = []
    finished: list[float] = []
    generate_of_engine = engine.generate

    async def counted(*args, **kwargs):
        arrived.append(1)
        try:
            return await generate_of_engine(*args, **kwargs)
        finally:
            finished.append(time.monotonic())

    def generate(i):
        chat(z, mount, [{"role": "user", "content": f"Story {i}: write a long one."}], max_tokens=64, seed=None)

    engine.generate = counted
    try:
        workers = [threading.Thread(target=generate, args=(i,)) for i in range(6)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while len(arrived) < len(workers) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(arrived) == len(workers), f"only {len(arrived)} of {len(workers)} generations reached the engine"
        r = z.post(f"/{mount}/weights/reload", json={"path": str(fixture_path("tiny-chatml"))})  # the same weights
        answered = time.monotonic()
        for w in workers:
            w.join()
    finally:
        del engine.generate
    assert r.status_code == 200, r.text
    return sum(t < answered for t in finished) < len(workers)


PROBES = {
    "no-correction": p_not_spliced, "strip-reasoning-served": p_strip_reasoning, "tool-json-resorted": p_tool_json,
    "no-separator": p_no_separator, "double-eos": p_double_eos, "decode-prefix-match": p_decode_prefix,
    "last-eos-splice": p_last_eos, "drop-between-assistants": p_drop_between, "empty-prefix-accepted": p_empty_prefix,
    "bundle-length-mismatch": p_length_mismatch, "partial-bundle": p_partial_bundle,
    "bundle-disagrees": p_bundle_disagrees, "usage-wrong": p_usage, "logprobs-shifted": p_shifted,
    "raw-logprobs": p_raw, "tokenize-disagrees": p_tokenize, "overflow-500": p_overflow,
    "top-logprobs-null-drops": p_top_null, "stale-weights": p_stale, "oov-rejected": p_oov,
    "truncated-eos-dropped": p_truncated_eos, "token-strings-not-ids": p_token_strings,
    "bad-finish-reason": p_finish_reason, "rejects-token-fields": p_rejects_token_fields,
    "tokenize-wrong-shape": p_tokenize_shape, "models-id-unusable": p_models_id,
    "tool-args-object": p_tool_args_object, "first-carrier-prefix": p_first_carrier,
    "edited-history-spliced": p_edited_spliced, "rejects-n": p_rejects_n,
    "false-refusal-mid-think": p_false_refusal,
    "stop-id-not-a-turn-closer": p_stop_id_not_a_turn_closer,
    "prompt-buffer-shared": p_prompt_buffer, "overflow-500-under-load": p_overflow_under_load,
    "refit-mid-generation": p_refit_mid_generation,
}
MUTANTS = discover()


def test_every_mutant_has_a_probe():
    assert set(MUTANTS) - set(PROBES) == set(), "add a probe for each new mutant"
    assert set(PROBES) - set(MUTANTS) == set(), "probe for a mutant that no longer exists"


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_module_shape(name):
    spec = MUTANTS[name]
    assert spec.summary.endswith(".") and spec.reproduces and hasattr(spec.module, "Mutant")


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_has_its_defect_and_the_reference_does_not(zoo, name):
    probe = PROBES[name]
    assert probe(zoo, name), f"{name}: defect not observed"
    assert not probe(zoo, REFERENCE), f"the reference shows {name}'s defect"


def test_zoo_lists_every_mutant(zoo):
    listing = zoo.get("/mutants").json()
    assert [m["name"] for m in listing["mutants"]] == sorted(MUTANTS)
    assert zoo.get("/health").json()["status"] == "ok"


def test_stale_weights_reload_is_acknowledged_but_loads_nothing(zoo):
    before = zoo.get("/stale-weights/weights").json()["weight_version"]
    r = zoo.post("/stale-weights/weights/reload", json={"path": str(fixture_path("tiny-chatml"))})
    assert r.status_code == 200 and r.json()["weight_version"] == before + 1
    assert p_stale(zoo, "stale-weights"), "still the previous checkpoint after the refit"
    prompt, gen, lps = sampled(zoo, "stale-weights")  # self-consistent: its own rescoring agrees
    assert max(abs(a - b) for a, b in zip(rescored(zoo, "stale-weights", prompt, gen), lps)) < 1e-3


def test_an_engine_with_weights_apart_from_the_tokenizer_still_decodes_forced_tool_calls(zoo):
    # stale-weights serves a weights-only checkpoint: the grammar must come from the server's tokenizer (a
    # tokenizer loaded from that folder is empty and masked every token: HTTP 500, found by the vLLM selftest)
    tools = [{"type": "function", "function": {"name": "pick", "parameters": {
        "type": "object", "properties": {"c": {"type": "string", "enum": ["a"]}}, "required": ["c"]}}}]
    for mount in (REFERENCE, "stale-weights"):
        status, data = chat(zoo, mount, [{"role": "user", "content": "Pick one."}], tools=tools, max_tokens=32,
                            tool_choice={"type": "function", "function": {"name": "pick"}},
                            chat_template_kwargs={"enable_thinking": False})
        assert status == 200, data
        assert json.loads(data["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"c": "a"}
