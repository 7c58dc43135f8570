"""The environment servers over real HTTP: Gym's routes, the session cookie, byte-exact tool bodies, errors.

The servers run as child processes (``conftest``); cookies are sent back by hand, in a ``Cookie`` header,
the way Gym's simple agent passes the seed answer's cookies to every later call (the client's own cookie
jar refuses every cookie, as Gym's aiohttp client uses a dummy jar).
A few cases that need a server built around a broken or tiny piece run the same app in process.
"""
from __future__ import annotations

import asyncio
import json
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx
import pytest
from starlette.testclient import TestClient

from fixtures.tasks import rows, tool_output
from reference_impl.envs.app import create_app
from reference_impl.envs.sessions import cookie_name
from reference_impl.envs.tasks import ARITH, Task

from ._rollouts import ideal_output, verify_body

LOOKUP_COOKIE = cookie_name("lookup")
HTTP = httpx.Client(cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])), timeout=30)


@pytest.fixture(scope="module", autouse=True)
def _close_client():
    yield
    HTTP.close()


def seed(url: str, row: dict) -> dict[str, str]:
    """``POST /seed_session`` with the row; returns the answer's cookies, as the agent keeps them."""
    answer = HTTP.post(url + "/seed_session", json=row)
    assert answer.status_code == 200 and answer.json() == {}, answer.text
    return dict(answer.cookies)


def post(url: str, path: str, body, cookies: dict[str, str] | None = None, **kw) -> httpx.Response:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    if isinstance(body, (bytes, str)):
        return HTTP.post(url + path, content=body, headers={**headers, "Content-Type": "application/json"}, **kw)
    return HTTP.post(url + path, json=body, headers=headers, **kw)


def assert_error(answer: httpx.Response, status: int, *, param: str | None = None, says: str = "") -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] is None, error
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    assert error["param"] == param and says in error["message"], error
    return error


def test_health(arith_env, lookup_env):
    for url, task in ((arith_env, "arith"), (lookup_env, "lookup")):
        answer = HTTP.get(url + "/health")
        assert answer.status_code == 200 and answer.json()["task"] == task


def test_seed_session_sets_a_session_cookie(lookup_env):
    answer = HTTP.post(lookup_env + "/seed_session", json=rows("lookup", "validation")[0])
    assert answer.status_code == 200 and answer.json() == {}
    set_cookie = answer.headers["set-cookie"]
    assert set_cookie.startswith(f"{LOOKUP_COOKIE}=") and "Path=/" in set_cookie and "HttpOnly" in set_cookie
    # every seed starts its own session
    assert seed(lookup_env, rows("lookup", "validation")[0]) != dict(answer.cookies)


def test_lookup_answers_the_seeded_table_byte_for_byte(lookup_env):
    for row in rows("lookup", "validation")[:8]:
        cookies = seed(lookup_env, row)
        for key, value in row["table"].items():
            answer = post(lookup_env, "/lookup", {"key": key}, cookies)
            assert answer.status_code == 200 and answer.content == tool_output(value).encode()
            assert answer.headers["content-type"] == "application/json"
            assert answer.cookies.get(LOOKUP_COOKIE) == cookies[LOOKUP_COOKIE]  # refreshed, like Gym's middleware
        unknown = post(lookup_env, "/lookup", {"key": "no-such-key"}, cookies)
        assert unknown.status_code == 200 and unknown.content == b'{"error":"unknown key"}' == tool_output(None).encode()


def test_a_session_sees_only_its_own_table(lookup_env):
    base = rows("lookup", "validation")[0]
    first = seed(lookup_env, {**base, "table": {"red": "11"}})
    second = seed(lookup_env, {**base, "table": {"red": "22", "blue": "33"}})
    assert post(lookup_env, "/lookup", {"key": "red"}, first).content == b'{"value":"11"}'
    assert post(lookup_env, "/lookup", {"key": "red"}, second).content == b'{"value":"22"}'
    assert post(lookup_env, "/lookup", {"key": "blue"}, first).content == b'{"error":"unknown key"}'


def test_verify_scores_the_ideal_rollout_and_echoes_the_row(arith_env, lookup_env):
    for url, task in ((arith_env, "arith"), (lookup_env, "lookup")):
        row = rows(task, "validation")[3]
        cookies = seed(url, row)
        if task == "lookup":
            post(url, "/lookup", {"key": row["key"]}, cookies)
        body = verify_body(row, ideal_output(row))
        answer = post(url, "/verify", body, cookies)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["reward"] == 1.0 and result["reward_components"] == {"format": 0.2, "answer": 0.8}
        assert {k: result[k] for k in body} == body  # the request comes back unchanged
        if task == "lookup":
            assert result["tool_calls"] == 1 and result["session_tool_calls"] == 1
        # without the session cookie the score is the same; only the session's tool count is unknown
        bare = post(url, "/verify", body).json()
        assert bare["reward"] == 1.0 and bare.get("session_tool_calls") is None


def test_many_concurrent_rollouts_keep_their_sessions_apart(lookup_env):
    async def rollout(http: httpx.AsyncClient, row: dict) -> float:
        seeded = await http.post(lookup_env + "/seed_session", json=row)
        cookie = {"Cookie": f"{LOOKUP_COOKIE}={seeded.cookies[LOOKUP_COOKIE]}"}
        looked_up = await http.post(lookup_env + "/lookup", json={"key": row["key"]}, headers=cookie)
        value = json.loads(looked_up.content)["value"]
        output = ideal_output({**row, "expected_answer": value, "table": {row["key"]: value}})
        verified = await http.post(lookup_env + "/verify", json=verify_body(row, output), headers=cookie)
        return verified.json()["reward"]

    async def all_rows() -> list[float]:
        async with httpx.AsyncClient(timeout=30) as http:  # cookies go in explicit headers, as in the agent
            return await asyncio.gather(*(rollout(http, row) for row in rows("lookup", "validation")))

    assert asyncio.run(all_rows()) == [1.0] * len(rows("lookup", "validation"))


@pytest.mark.parametrize("path, body, status, param, says", [
    ("/seed_session", b"{not json", 400, None, "malformed JSON"),
    ("/seed_session", b"", 400, None, "empty"),
    ("/seed_session", b'{"responses_create_params": NaN}', 400, None, "malformed JSON"),
    ("/seed_session", [1, 2], 400, None, "JSON object"),
    ("/seed_session", {"table": {"red": "1"}}, 422, "responses_create_params", "missing"),
    ("/seed_session", {"responses_create_params": {"input": []}}, 422, "table", "missing"),
    ("/seed_session", {"responses_create_params": {"input": []}, "table": ["red"]}, 422, "table", "object"),
    ("/seed_session", {"responses_create_params": {"input": []}, "table": {"red": 1}}, 422, "table.red", "string"),
    ("/verify", b"[]", 400, None, "JSON object"),
    ("/verify", {"responses_create_params": {}, "expected_answer": "1"}, 422, "response", "missing"),
    ("/verify", {"response": {"output": []}, "expected_answer": "1"}, 422, "responses_create_params", "missing"),
    ("/verify", {"responses_create_params": {}, "response": {"output": 5}}, 422, "response.output", "array"),
    ("/verify", {"responses_create_params": {}, "response": {"output": []}, "expected_answer": ["1"]}, 422,
     "expected_answer", "string"),
])
def test_a_bad_body_is_a_4xx_error_object_naming_the_field(lookup_env, path, body, status, param, says):
    assert_error(post(lookup_env, path, body), status, param=param, says=says)


def test_aggregate_metrics_over_http(arith_env):
    answer = post(arith_env, "/aggregate_metrics", {"verify_responses": [{"reward": 1.0}, {"reward": 0.0}]})
    assert answer.status_code == 200 and answer.json()["key_metrics"] == {"mean/reward": 0.5}
    assert_error(post(arith_env, "/aggregate_metrics", {}), 422, param="verify_responses", says="missing")


def test_a_bad_tool_call_is_a_4xx_error_object(lookup_env):
    cookies = seed(lookup_env, rows("lookup", "validation")[0])
    assert_error(post(lookup_env, "/lookup", {"key": 5}, cookies), 422, param="key", says="string")
    assert_error(post(lookup_env, "/lookup", {"name": "red"}, cookies), 422, param="key", says="missing")
    assert_error(post(lookup_env, "/lookup", b"red", cookies), 400, says="malformed JSON")


def test_lookup_without_a_seeded_session_is_refused(lookup_env):
    for cookies in (None, {LOOKUP_COOKIE: "made-up"}, {cookie_name("arith"): "x"}):
        assert_error(post(lookup_env, "/lookup", {"key": "red"}, cookies), 400, param=LOOKUP_COOKIE,
                     says="/seed_session")


def test_unknown_routes_and_methods_are_error_objects(arith_env, lookup_env):
    assert_error(post(arith_env, "/lookup", {"key": "red"}), 404, says="POST /verify")  # arith has no tool
    assert_error(HTTP.get(lookup_env + "/nowhere"), 404, says="POST /lookup")
    assert_error(HTTP.get(lookup_env + "/verify"), 405, says="GET /verify")


def test_a_verifier_that_raises_is_a_500_error_object_and_the_server_keeps_serving():
    def broken(row, items, state):
        raise ZeroDivisionError("division by zero in the scorer")

    app = create_app(Task(name="broken", description="", seed=lambda row: {}, verify=broken))
    with TestClient(app, raise_server_exceptions=False) as http:
        row = rows("arith", "validation")[0]
        answer = http.post("/verify", json=verify_body(row, ideal_output(row)))
        assert answer.status_code == 500
        error = answer.json()["error"]
        assert error["type"] == "server_error" and "ZeroDivisionError" in error["message"]
        assert "broken verifier" in error["message"] and error["code"] is None
        assert http.get("/health").status_code == 200


def test_the_session_store_is_bounded():
    with TestClient(create_app("lookup", max_sessions=2)) as http:
        row = rows("lookup", "validation")[0]
        first, second, third = (http.post("/seed_session", json=row).cookies[LOOKUP_COOKIE] for _ in range(3))
        ask = {"key": row["key"]}
        assert http.post("/lookup", json=ask, headers={"Cookie": f"{LOOKUP_COOKIE}={first}"}).status_code == 400
        for kept in (second, third):
            assert http.post("/lookup", json=ask, headers={"Cookie": f"{LOOKUP_COOKIE}={kept}"}).status_code == 200


def test_the_task_objects_serve_in_process_too():
    with TestClient(create_app(ARITH)) as http:
        assert http.get("/health").json()["task"] == "arith"
