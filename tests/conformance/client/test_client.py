"""The Gym-faithful client: training body, extraction rules, Responses items, retries and error causes."""
import asyncio

import httpx
import pytest

from conformance.client import Bundle, GymClient, TokenMetadataError, choose, parse_generation, read_sources, \
    to_messages, to_output_items, training_body
from conformance.core import EndpointError


def _resp(message=None, *, inline=True, token_ids=(5, 2), lps=(-0.1, -0.2), token="token_id:{}"):
    choice = {"message": {"role": "assistant", "content": "hi", **(message or {})},
              "logprobs": {"content": [{"token": token.format(t), "logprob": lp} for t, lp in zip(token_ids, lps)]},
              "finish_reason": "stop"}
    out = {"choices": [choice]}
    if inline:
        out["prompt_token_ids"] = [1, 2, 3]
        choice["token_ids"] = list(token_ids)
    return out


def test_training_body_forces_gym_fields():
    body = training_body([{"role": "user", "content": "x"}], model="m", top_logprobs=5, logprobs=False,
                         tool_choice="auto")
    assert body["logprobs"] is True and body["top_logprobs"] == 0 and body["return_tokens_as_token_ids"] is True
    assert "tool_choice" not in body and "n" not in body
    assert training_body([], model="m", n=1)["n"] == 1  # absent or 1 both pass through
    with pytest.raises(ValueError, match="n=1"):
        training_body([], model="m", n=2)


def test_source_order_and_rules():
    b = choose(read_sources(_resp()))
    assert (b.source, b.prompt_token_ids, b.generation_token_ids) == ("inline", [1, 2, 3], [5, 2])
    bundle = {"prompt_token_ids": [1, 2, 3], "generation_token_ids": [5, 2], "generation_log_probs": [-0.1, -0.2]}
    assert choose(read_sources(_resp(bundle))).source == "message"
    with pytest.raises(TokenMetadataError, match="disagrees with vLLM response token IDs"):
        choose(read_sources(_resp({**bundle, "generation_token_ids": [5, 3]})))
    with pytest.raises(TokenMetadataError, match="missing: generation_log_probs"):
        choose(read_sources(_resp({"prompt_token_ids": [1], "generation_token_ids": [5]})))
    partial = _resp()
    del partial["choices"][0]["token_ids"]
    with pytest.raises(TokenMetadataError, match="partial token metadata"):
        choose(read_sources(partial))
    with pytest.raises(TokenMetadataError, match="disagree with choice logprob token IDs"):
        choose(read_sources(_resp(token_ids=(5, 2), token="token_id:7")))
    fallback = read_sources(_resp(inline=False))
    assert choose(fallback, [9, 9]).source == "logprobs"
    bool_lp = _resp(inline=False, lps=(True, -0.2))
    assert read_sources(bool_lp).logprob_ids is None  # bool is not a log prob (Gym rejects it)


def test_items_bundle_on_last_and_roundtrip():
    msg = parse_generation('<think>\nplan\n</think>\n\nok\n<tool_call>\n{"name": "f", "arguments": {"b": 1}}\n'
                           '</tool_call>')
    assert msg["reasoning"] == "plan" and msg["tool_calls"][0]["function"]["arguments"] == '{"b": 1}'
    b = Bundle([1], [2, 3], [-0.1, -0.2], "message")
    items = to_output_items(msg, b)
    assert [i["type"] for i in items] == ["reasoning", "message", "function_call"]
    assert "generation_token_ids" in items[-1] and all("generation_token_ids" not in i for i in items[:-1])
    back = to_messages([{"role": "user", "content": "q"}, *items,
                        {"type": "function_call_output", "call_id": "call_0", "output": "r"}])
    assert [m["role"] for m in back] == ["user", "assistant", "tool"]
    a = back[1]
    assert a["generation_token_ids"] == [2, 3] and a["reasoning_content"] == "plan" and a["reasoning"] == "plan"
    assert a["content"] == "ok" and a["tool_calls"][0]["id"] == "call_0"


def _client(handler, **kw):
    return GymClient("http://x/v1", model="m", transport=httpx.MockTransport(handler), retry_pause_s=0.0, **kw)


def test_retries_rate_limits_then_succeeds():
    codes = iter([429, 503, 200])

    def handler(request):
        code = next(codes)
        return httpx.Response(code, json=_resp() if code == 200 else {"error": "busy"})

    async def go():
        async with _client(handler) as c:
            call = await c.chat([{"role": "user", "content": "x"}])
            return call, c.stats
    call, stats = asyncio.run(go())
    assert call.bundle is not None and stats.retries == 2


def test_server_errors_are_counted_even_when_a_retry_gets_the_answer():
    codes = iter([500, 429, 500, 200])  # the 429 is rate limiting, not a server error

    def handler(request):
        code = next(codes)
        return httpx.Response(code, json=_resp() if code == 200 else {"error": f"status {code}"})

    async def go():
        async with _client(handler, max_tries=5) as c:
            call = await c.chat([{"role": "user", "content": "x"}])
            return call, c.stats
    call, stats = asyncio.run(go())
    assert call.bundle is not None and stats.retries == 3
    assert stats.server_errors == 2 and "HTTP 500" in stats.first_server_error


@pytest.mark.parametrize("handler, cause", [
    (lambda r: httpx.Response(500, text="boom"), "HTTP 500 after 3 tries"),
    (lambda r: httpx.Response(503, text="busy"), "HTTP 503"),
    (lambda r: httpx.Response(200, text="<html>"), "not JSON"),
])
def test_errors_name_the_cause(handler, cause):
    async def go():
        async with _client(handler, retry_budget_s=0.2) as c:
            await c.chat([{"role": "user", "content": "x"}])
    with pytest.raises(EndpointError, match=cause):
        asyncio.run(go())


def test_context_overflow_is_an_incomplete_call():
    def handler(request):
        return httpx.Response(400, json={"error": {"message": "maximum context length is 10 tokens"}})

    async def go():
        async with _client(handler) as c:
            return await c.chat([{"role": "user", "content": "x"}])
    call = asyncio.run(go())
    assert call.incomplete and call.bundle is None and call.finish_reason == "length"


def test_fallback_source_calls_tokenize_at_the_root():
    seen = []

    def handler(request):
        seen.append(request.url.path)
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [7, 8], "count": 2})
        return httpx.Response(200, json=_resp(inline=False))

    async def go():
        async with _client(handler) as c:
            return await c.chat([{"role": "user", "content": "x"}], inline_ids=False)
    call = asyncio.run(go())
    assert seen == ["/v1/chat/completions", "/tokenize"]
    assert call.bundle.source == "logprobs" and call.bundle.prompt_token_ids == [7, 8]


def test_a_turn_cut_while_thinking_is_all_reasoning_as_vllms_qwen3_parser_reads_it():
    # the harness supplies constructed turns as the server's parsers would return them; vLLM's own parsers judge
    from transformers import AutoTokenizer
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.parser import ParserManager

    from fixtures import fixture_path

    tok = AutoTokenizer.from_pretrained(fixture_path("tiny-qwen3"))
    cls = ParserManager.get_parser(tool_parser_name="hermes", reasoning_parser_name="qwen3", enable_auto_tools=True,
                                   model_name="tiny", tokenizer=tok)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    vreq = ChatCompletionRequest(model="tiny", messages=[], tools=tools, tool_choice="auto")
    for text in ["<think>\nseven times thirteen is", "<think>\nplan\n</think>\n\nok",
                 '<think>\nplan\n</think>\n\n<tool_call>\n{"name": "f", "arguments": {"b": 1}}\n</tool_call>']:
        parser = cls(tok, vreq.tools, chat_template_kwargs={})
        parser.set_prompt_token_ids([])
        reasoning, content, calls = parser.parse(text, vreq, enable_auto_tools=True,
                                                 model_output_token_ids=tok.encode(text))
        ours = parse_generation(text)
        assert ours["reasoning"] == reasoning.strip("\n"), text
        assert ours["content"] == (content or "").strip(), text
        assert [c["function"]["arguments"] for c in ours.get("tool_calls", [])] == [c.arguments for c in calls or []]
