"""The HTTP server end to end on the transformers engine (in-process, no vLLM engine start).

Covers the routes, the bundle and its three sources (E3-E6), the bad-input matrix (4xx, server
keeps serving), api-key auth, the sampling pin (E13), context overflow (E10), tokenize parity (E17),
teacher-forced rescoring through /v1/completions (P16) and weight reload (R8).
"""
from __future__ import annotations

import gc
import json
import math

import pytest
import torch
from fastapi.testclient import TestClient

from reference_impl.server.app import create_app
from reference_impl.server.engines.hf import HFEngine
from reference_impl.server.sampling import Profile, SamplingPolicy
from reference_impl.server.service import Service

from .conftest import TOOLS

MAX_LEN = 256
TRAIN = {"logprobs": True, "top_logprobs": 0, "return_tokens_as_token_ids": True, "return_token_ids": True}


@pytest.fixture(scope="module")
def engine(model_dir, tokenizer):
    return HFEngine(model_dir, eos_token_id=tokenizer.eos_token_id, max_model_len=MAX_LEN)


def _client(tokenizer, engine, model_dir, *, api_key=None, policy=None):
    service = Service(tokenizer, engine, served_model_name="tiny", model_path=str(model_dir), policy=policy,
                      reasoning_parser="qwen3", tool_parser="hermes")
    return TestClient(create_app(service, api_key=api_key))


@pytest.fixture(scope="module")
def client(tokenizer, engine, model_dir):
    with _client(tokenizer, engine, model_dir) as c:
        yield c


def _chat(client, messages, **kw):
    r = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages, "max_tokens": 24,
                                                  "temperature": 1.0, "top_p": 1.0, **TRAIN, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_startup_heap_is_out_of_the_collectors_reach_while_serving(tokenizer, engine, model_dir):
    """As in stock vLLM's server: a full collection walking the startup heap stalled every request in flight."""
    gc.unfreeze()
    with _client(tokenizer, engine, model_dir) as c:
        assert c.get("/health").status_code == 200
        assert gc.get_freeze_count() > 10_000  # torch, transformers and the tokenizer's objects
    assert gc.get_freeze_count() == 0  # and an in-process app hands the collector back as it found it


def test_health_and_models(client):
    assert client.get("/health").json()["status"] == "ok"
    data = client.get("/v1/models").json()["data"]
    assert data[0]["id"] == "tiny" and data[0]["max_model_len"] == MAX_LEN


def test_training_response_sources_agree(client):
    body = _chat(client, [{"role": "user", "content": "What is the weather?"}], tools=TOOLS, tool_choice="auto")
    choice, msg = body["choices"][0], body["choices"][0]["message"]
    gen = msg["generation_token_ids"]
    assert gen == choice["token_ids"] == [int(c["token"].removeprefix("token_id:"))
                                         for c in choice["logprobs"]["content"]]
    assert msg["prompt_token_ids"] == body["prompt_token_ids"]
    assert msg["generation_log_probs"] == [c["logprob"] for c in choice["logprobs"]["content"]]
    assert all(math.isfinite(x) and x <= 0 for x in msg["generation_log_probs"])
    assert body["usage"]["prompt_tokens"] == len(body["prompt_token_ids"])
    assert body["usage"]["completion_tokens"] == len(gen)
    assert (choice["finish_reason"] == "length") == (gen[-1] != 2)
    assert "reasoning_content" in msg and "reasoning" in msg


def test_tokenize_matches_chat_prompt_on_multi_turn(client):
    msgs = [{"role": "user", "content": "hi"}]
    first = _chat(client, msgs, chat_template_kwargs={"enable_thinking": False})
    m = first["choices"][0]["message"]
    msgs += [{k: m[k] for k in ("role", "content", "prompt_token_ids", "generation_token_ids",
                                "generation_log_probs")}, {"role": "user", "content": "again"}]
    second = _chat(client, msgs, chat_template_kwargs={"enable_thinking": False})
    tok = client.post("/tokenize", json={"model": "tiny", "messages": msgs,
                                         "chat_template_kwargs": {"enable_thinking": False}}).json()
    assert tok["tokens"] == second["prompt_token_ids"] and tok["count"] == len(tok["tokens"])
    assert client.post("/v1/tokenize", json={"messages": msgs,
                                             "chat_template_kwargs": {"enable_thinking": False}}).json() == tok
    head = m["prompt_token_ids"] + m["generation_token_ids"]
    assert second["prompt_token_ids"][:len(head)] == head


def test_detokenize(client, tokenizer):
    ids = tokenizer.encode("hello world")
    assert client.post("/detokenize", json={"tokens": ids}).json() == {"prompt": "hello world"}


def test_completions_rescoring_reproduces_generation_logprobs(client):
    # P16: teacher-forced rescoring of prompt + generation at temperature 1, top_p 1.
    body = _chat(client, [{"role": "user", "content": "Tell me a story"}])
    m = body["choices"][0]["message"]
    ids = m["prompt_token_ids"] + m["generation_token_ids"]
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": ids, "max_tokens": 0, "echo": True,
                                             "logprobs": 0, "prompt_logprobs": 0}).json()
    lps = r["choices"][0]["logprobs"]["token_logprobs"]
    assert lps[0] is None and len(lps) == len(ids)
    rescored = lps[len(m["prompt_token_ids"]):]
    assert max(abs(a - b) for a, b in zip(rescored, m["generation_log_probs"])) < 1e-4


def test_completions_generate_from_token_ids(client):
    r = client.post("/v1/completions", json={"prompt": [1, 89, 95], "max_tokens": 5, "logprobs": 0,
                                             "return_token_ids": True, "return_tokens_as_token_ids": True}).json()
    choice = r["choices"][0]
    assert choice["prompt_token_ids"] == [1, 89, 95] and 1 <= len(choice["token_ids"]) <= 5
    assert [int(t.removeprefix("token_id:")) for t in choice["logprobs"]["tokens"]] == choice["token_ids"]


def test_seeded_requests_repeat(client):
    a = _chat(client, [{"role": "user", "content": "x"}], seed=7)["choices"][0]["token_ids"]
    b = _chat(client, [{"role": "user", "content": "x"}], seed=7)["choices"][0]["token_ids"]
    assert a == b


GOOD = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **TRAIN}
BAD = [  # (name, body or raw bytes, status, param the error names)
    ("malformed-json", b'{"messages": [', 400, None),
    ("not-an-object", b"[1, 2]", 400, None),
    ("empty-body", b"", 400, None),
    ("no-messages", {"model": "tiny"}, 400, "messages"),
    ("messages-not-list", {**GOOD, "messages": "hi"}, 400, "messages"),
    ("bad-role", {**GOOD, "messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role"),
    ("max-tokens-string", {**GOOD, "max_tokens": "4"}, 400, "max_tokens"),
    ("max-tokens-negative", {**GOOD, "max_tokens": -1}, 400, "max_tokens"),
    ("max-tokens-zero", {**GOOD, "max_tokens": 0}, 400, "max_tokens"),
    ("max-tokens-huge", {**GOOD, "max_tokens": 10**20}, 400, "max_tokens"),
    ("temperature-string", {**GOOD, "temperature": "hot"}, 400, "temperature"),
    ("top-p-zero", {**GOOD, "top_p": 0}, 400, "top_p"),
    ("n-2", {**GOOD, "n": 2}, 400, "n"),
    ("top-k", {**GOOD, "top_k": 20}, 400, "top_k"),
    ("top-logprobs-null", {**GOOD, "top_logprobs": None}, 400, "top_logprobs"),
    ("logprobs-not-bool", {**GOOD, "logprobs": "yes"}, 400, "logprobs"),
    ("stop-strings", {**GOOD, "stop": ["\n"]}, 400, "stop"),
    ("stream", {**GOOD, "stream": True}, 400, "stream"),
    ("wrong-model", {**GOOD, "model": "other"}, 404, "model"),
    ("oov-carried-ids", {**GOOD, "messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "", "prompt_token_ids": [1, 5000], "generation_token_ids": [2],
         "generation_log_probs": [-1.0]}, {"role": "user", "content": "b"}]}, 400, "messages.1.prompt_token_ids"),
    ("negative-id", {**GOOD, "required_prefix_token_ids": [-3]}, 400, "required_prefix_token_ids"),
    ("context-overflow", {**GOOD, "messages": [{"role": "user", "content": "word " * 400}]}, 400, "messages"),
    ("tools-malformed", {**GOOD, "tools": [{"type": "function"}]}, 400, "tools.0.function"),
]


@pytest.mark.parametrize("name,body,status,param", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_an_openai_error(client, name, body, status, param):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = client.post("/v1/chat/completions", **kw)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code", "param"} and err["code"] == status
    assert err["param"] == param
    if name == "context-overflow":
        assert "context length" in err["message"]


@pytest.mark.parametrize("route,body", [
    ("/v1/completions", {"prompt": [1, 99999], "max_tokens": 2}),
    ("/v1/completions", {"prompt": [], "max_tokens": 2}),
    ("/v1/completions", {"prompt": [1, 2], "max_tokens": 0}),
    ("/detokenize", {"tokens": [1, "a"]}),
    ("/detokenize", {"tokens": [1, 5000]}),
    ("/tokenize", {"messages": [{"role": "user", "content": "x"}], "prompt": "y"}),
    ("/weights/reload", {"path": "/nonexistent"}),
    ("/weights/reload", {"path": 3}),
])
def test_bad_input_on_other_routes(client, route, body):
    r = client.post(route, json=body)
    assert 400 <= r.status_code < 500 and "error" in r.json(), r.text


def test_server_keeps_serving_after_bad_input(client):
    for _, body, _, _ in BAD:
        client.post("/v1/chat/completions", **({"content": body} if isinstance(body, bytes) else {"json": body}))
    assert _chat(client, [{"role": "user", "content": "still there?"}])["choices"][0]["message"]["generation_token_ids"]


def test_max_tokens_is_clamped_to_the_room_left(client):
    body = _chat(client, [{"role": "user", "content": "word " * 60}], max_tokens=10_000, temperature=1.0)
    assert len(body["prompt_token_ids"]) + len(body["choices"][0]["token_ids"]) <= MAX_LEN


def test_api_key(tokenizer, engine, model_dir):
    with _client(tokenizer, engine, model_dir, api_key="sekret") as c:
        assert c.get("/health").status_code == 200
        for route in ("/v1/models", "/weights"):
            assert c.get(route).status_code == 401
            assert c.get(route, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert c.get(route, headers={"Authorization": "Bearer sekret"}).status_code == 200
        r = c.post("/v1/chat/completions", json=GOOD)
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert c.post("/tokenize", json={"messages": GOOD["messages"]}).status_code == 401


def test_sampling_pin(tokenizer, engine, model_dir):
    pin = SamplingPolicy(Profile(0.6, 0.95), Profile(1.0, 1.0))
    with _client(tokenizer, engine, model_dir, policy=pin) as c:
        post = lambda **kw: c.post("/v1/chat/completions", json={**GOOD, **kw})  # noqa: E731
        assert post(temperature=0.6, top_p=0.95).status_code == 200
        assert post(temperature=1.0, top_p=1.0).status_code == 200  # validation profile
        off = post(temperature=0.7, top_p=0.95)
        assert off.status_code == 400 and off.json()["error"]["param"] == "temperature"
        unset = post(temperature=0.6)  # P25: unset top_p must not fall back to generation_config
        assert unset.status_code == 400 and unset.json()["error"]["param"] == "top_p"
    with _client(tokenizer, engine, model_dir, policy=SamplingPolicy(Profile(0.6, 0.95), overrides=True)) as c:
        assert c.post("/v1/chat/completions", json={**GOOD, "temperature": 0.2}).status_code == 200


def test_weight_reload_then_logprobs_match_transformers(client, model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path, safe_serialization=True)
    before = client.get("/weights").json()["weight_version"]
    r = client.post("/weights/reload", json={"path": str(tmp_path)})
    assert r.status_code == 200 and r.json()["weight_version"] == before + 1
    ids = [1, 89, 95, 89, 272, 83, 40, 41, 42]
    got = client.post("/v1/completions", json={"prompt": ids, "max_tokens": 0, "prompt_logprobs": 0}).json()
    served = [e[str(t)]["logprob"] for e, t in zip(got["choices"][0]["prompt_logprobs"][1:], ids[1:])]
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], -1).gather(
            -1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1).tolist()
    assert max(abs(a - b) for a, b in zip(served, ref)) < 1e-4
    client.post("/weights/reload", json={"path": str(model_dir)})  # restore for later tests


SCHEMA = {"type": "object", "properties": {"c": {"type": "string", "enum": ["a", "b"]}}, "required": ["c"]}


@pytest.mark.parametrize("structured, words", [
    ({"regex": "a+"}, "structured_outputs"),                  # an unsupported form is refused, never ignored
    ({"json": "not a schema"}, "structured_outputs"),
])
def test_completions_refuse_structured_outputs_they_cannot_serve(client, structured, words):
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 4,
                                             "temperature": 1.0, "top_p": 1.0, "structured_outputs": structured})
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text


def test_completions_decode_under_a_json_schema(client):
    # The remote engine sends a forced tool choice to /v1/completions as structured_outputs: a gateway in front
    # of this server gets JSON the schema allows (xgrammar, as in vLLM), from an untrained model.
    for _ in range(3):
        r = client.post("/v1/completions", json={"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 32,
                                                 "temperature": 1.0, "top_p": 1.0, "structured_outputs": {"json": SCHEMA}})
        assert r.status_code == 200, r.text
        assert json.loads(r.json()["choices"][0]["text"]) in ({"c": "a"}, {"c": "b"})


def test_named_tool_choice_is_a_schema_valid_call(client):
    tools = [{"type": "function", "function": {"name": "pick", "parameters": SCHEMA}}]
    r = client.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "Pick."}],
                                                  "tools": tools, "max_tokens": 32, "temperature": 1.0, "top_p": 1.0,
                                                  "tool_choice": {"type": "function", "function": {"name": "pick"}},
                                                  "chat_template_kwargs": {"enable_thinking": False}})
    # (this module serves a 256-token context: the tool's system prompt leaves little room, so the schema is tiny)
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["pick"]
    assert json.loads(calls[0]["function"]["arguments"]) in ({"c": "a"}, {"c": "b"})
