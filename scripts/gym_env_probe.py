"""Runs NeMo Gym's own simple agent against gym-conformance's environment servers (Python >= 3.12, nemo-gym).

Executed by an interpreter from a side environment built by ``scripts/setup-gym-env.sh``; it imports only the
standard library and ``nemo_gym`` (and what nemo_gym itself ships with: fastapi, uvicorn, omegaconf), never
gym-conformance: the environments under test must meet Gym's code, not our idea of it.

    gym_env_probe.py --env arith=http://127.0.0.1:PORT --env lookup=http://127.0.0.1:PORT --rows ROWS.jsonl

``ROWS.jsonl`` holds dataset rows (their ``agent_ref.name`` picks the agent, as ``ng_collect_rollouts`` does).
The probe starts, in this one process, a scripted policy behind Gym's Responses-API route and one Gym
``SimpleAgent`` per environment (its real FastAPI app, its real ``ServerClient`` and aiohttp transport), then

1. validates every row with Gym's own request models (``BaseRunRequest``, ``SimpleAgentRunRequest``);
2. ``POST /run`` of every row to its agent, all at once: the agent seeds the environment's session, runs the
   policy, executes its tool calls against the environment with the session's cookies, hands the raw tool
   body to the policy and verifies; the answer is checked with ``BaseVerifyResponse`` and, when it carries
   ``reward_components``, ``BaseMultiRewardVerifyResponse``;
3. runs the first row of each environment again with the policy answering a wrong value;
4. drives the pieces by hand for the first row of each environment, as the agent's code does them, and
   validates the ``/verify`` request it sends with ``BaseVerifyRequest``;
5. asks each agent for ``/aggregate_metrics`` over its rollouts (the agent forwards it to the environment,
   as at the end of ``ng_collect_rollouts``) and validates the answer with ``AggregateMetrics``.

The scripted policy is a perfect player that reads what it needs from its input: the sum from the question,
the key from the question, the value from the tool output it is handed (so a reward of 1 means the tool
body reached the model unchanged). It records every tool output it sees.

Prints one JSON document: ``{"gym_version", "rollouts": [...], "wrong": [...], "direct": [...], "metrics"}``.
"""

import argparse
import asyncio
import json
import re
import socket
import sys
import time
from urllib.parse import urlsplit

SEEN_TOOL_OUTPUTS: dict[str, str] = {}  # call_id (unique per policy call) -> the tool output handed back
WRONG = {"on": False}
RESULTS: dict[str, list[dict]] = {}  # agent name -> its /run answers, stripped as rollout collection does


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(item: dict) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def _policy_output(body: dict, n: int) -> list:
    """What a perfect player answers to a Responses-API request body (Gym's output item models)."""
    from nemo_gym.openai_utils import (NeMoGymResponseFunctionToolCall, NeMoGymResponseOutputMessage,
                                       NeMoGymResponseOutputText)

    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    question = next(_text(i) for i in items if i.get("role") == "user")
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    SEEN_TOOL_OUTPUTS.update((i["call_id"], i["output"]) for i in outputs)
    if outputs:
        answer = json.loads(outputs[-1]["output"]).get("value", "?")
    elif body.get("tools"):
        key = re.search(r"value of (\w+)", question).group(1)
        return [NeMoGymResponseFunctionToolCall(call_id=f"call_{n}", name="lookup", id=f"fc_{n}",
                                                arguments=json.dumps({"key": key}), status="completed")]
    else:
        a, b = re.search(r"What is (\d+) \+ (\d+)", question).groups()
        answer = str(int(a) + int(b))
    if WRONG["on"]:
        answer += "1"
    text = NeMoGymResponseOutputText(annotations=[], text=f"<answer>{answer}</answer>")
    return [NeMoGymResponseOutputMessage(id=f"msg_{n}", content=[text])]


def _policy_app():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from nemo_gym.openai_utils import NeMoGymResponse

    app, calls = FastAPI(), {"n": 0}

    @app.post("/v1/responses")
    async def responses(request: Request):
        body = await request.json()
        calls["n"] += 1
        response = NeMoGymResponse(id=f"resp_{calls['n']}", created_at=time.time(), model="policy",
                                   object="response", output=_policy_output(body, calls["n"]),
                                   parallel_tool_calls=False, tool_choice="auto", tools=[])
        return JSONResponse(response.model_dump(mode="json"))
    return app


def _agents(envs: dict[str, str], policy_port: int) -> dict[str, tuple]:
    """One Gym SimpleAgent per environment, named like the rows' ``agent_ref`` (``<task>_simple_agent``)."""
    from nemo_gym.config_types import BaseServerConfig
    from nemo_gym.server_utils import ServerClient
    from omegaconf import OmegaConf
    from responses_api_agents.simple_agent.app import SimpleAgent, SimpleAgentConfig

    config = {"policy": {"responses_api_models": {"scripted": {"host": "127.0.0.1", "port": policy_port}}}}
    agents = {}
    for task, url in envs.items():
        parts, port = urlsplit(url), _free_port()
        env = {"host": parts.hostname, "port": parts.port}
        config[f"{task}_env"] = {"resources_servers": {"gym_conformance": env}}
        agent = {"host": "127.0.0.1", "port": port}
        config[f"{task}_simple_agent"] = {"responses_api_agents": {"simple_agent": agent}}
        agents[f"{task}_simple_agent"] = (task, port)
    client = ServerClient(head_server_config=BaseServerConfig(host="127.0.0.1", port=1),
                          global_config_dict=OmegaConf.create(config))
    built = {}
    for name, (task, port) in agents.items():
        agent_config = SimpleAgentConfig(
            name=name, host="127.0.0.1", port=port, entrypoint="app.py", max_steps=4,
            resources_server={"type": "resources_servers", "name": f"{task}_env"},
            model_server={"type": "responses_api_models", "name": "policy"})
        built[name] = (task, port, SimpleAgent(config=agent_config, server_client=client).setup_webserver())
    return built


async def _serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


def _validate_verify_answer(answer: dict) -> list[str]:
    """Gym's own response models over a verify answer; the names of those it passed."""
    from nemo_gym.base_resources_server import BaseMultiRewardVerifyResponse, BaseVerifyResponse
    from responses_api_agents.simple_agent.app import SimpleAgentVerifyResponse

    passed = []
    for cls in (BaseVerifyResponse, SimpleAgentVerifyResponse):
        cls.model_validate(answer)
        passed.append(cls.__name__)
    if "reward_components" in answer:
        BaseMultiRewardVerifyResponse.model_validate(answer)
        passed.append("BaseMultiRewardVerifyResponse")
    return passed


async def _run(agent_url: str, row: dict) -> dict:
    from nemo_gym.server_utils import get_response_json, raise_for_status, request

    answer = await request(method="POST", url=f"{agent_url}/run", json=row)
    await raise_for_status(answer)
    result = await get_response_json(answer)
    output = result["response"]["output"]
    keys = ("reward", "reward_components", "tool_calls", "session_tool_calls", "extracted_answer")
    RESULTS.setdefault(row["agent_ref"]["name"], []).append(
        {k: v for k, v in result.items() if k not in ("response", "responses_create_params")})
    return {"agent": row["agent_ref"]["name"], **{k: result.get(k) for k in keys},
            "echoed": all(result.get(k) == v for k, v in row.items() if k != "responses_create_params"),
            "models": _validate_verify_answer(result), "output_types": [item["type"] for item in output],
            "tool_outputs_seen": [SEEN_TOOL_OUTPUTS.get(item["call_id"]) for item in output
                                  if item["type"] == "function_call"]}


async def _direct(env_url: str, row: dict) -> dict:
    """Seed -> tool call -> verify by hand, with Gym's transport and models, the way its simple agent does."""
    from nemo_gym.base_resources_server import BaseVerifyRequest
    from nemo_gym.openai_utils import (NeMoGymFunctionCallOutput, NeMoGymResponse,
                                       NeMoGymResponseFunctionToolCall, NeMoGymResponseOutputMessage,
                                       NeMoGymResponseOutputText)
    from nemo_gym.server_utils import get_response_json, raise_for_status, request
    from responses_api_agents.simple_agent.app import SimpleAgentRunRequest

    body = SimpleAgentRunRequest.model_validate(row)
    seeded = await request(method="POST", url=f"{env_url}/seed_session", json=body.model_dump())
    await raise_for_status(seeded)
    cookies = {name: morsel.value for name, morsel in seeded.cookies.items()}
    output, tool_bodies = [], []
    if "key" in row:
        arguments = json.dumps({"key": row["key"]})
        call = NeMoGymResponseFunctionToolCall(call_id="call_0", name="lookup", arguments=arguments)
        tool = await request(method="POST", url=f"{env_url}/{call.name}", json=json.loads(call.arguments),
                             cookies=cookies)
        tool_bodies.append((await tool.content.read()).decode())
        output += [call, NeMoGymFunctionCallOutput(call_id=call.call_id, output=tool_bodies[-1])]
    text = NeMoGymResponseOutputText(annotations=[], text=f"<answer>{row['expected_answer']}</answer>")
    output.append(NeMoGymResponseOutputMessage(id="msg_0", content=[text]))
    response = NeMoGymResponse(id="resp_0", created_at=time.time(), model="policy", object="response",
                               output=output, parallel_tool_calls=False, tool_choice="auto", tools=[])
    payload = body.model_dump() | {"response": response.model_dump(mode="json")}
    BaseVerifyRequest.model_validate(payload)
    verified = await request(method="POST", url=f"{env_url}/verify", json=payload, cookies=cookies)
    await raise_for_status(verified)
    result = await get_response_json(verified)
    return {"agent": row["agent_ref"]["name"], "cookies": sorted(cookies), "tool_bodies": tool_bodies,
            "reward": result["reward"], "session_tool_calls": result.get("session_tool_calls"),
            "models": _validate_verify_answer(result)}


async def _metrics(agent_url: str, answers: list[dict]) -> dict:
    from nemo_gym.config_types import AggregateMetrics
    from nemo_gym.server_utils import get_response_json, raise_for_status, request

    answer = await request(method="POST", url=f"{agent_url}/aggregate_metrics",
                           json={"verify_responses": answers})
    await raise_for_status(answer)
    return AggregateMetrics.model_validate(await get_response_json(answer)).model_dump()


async def main(envs: dict[str, str], rows: list[dict]) -> dict:
    from nemo_gym.server_utils import GlobalAIOHTTPAsyncClientConfig, set_global_aiohttp_client

    set_global_aiohttp_client(GlobalAIOHTTPAsyncClientConfig())  # Gym's own transport; no global config read
    from nemo_gym.base_resources_server import BaseRunRequest
    from responses_api_agents.simple_agent.app import SimpleAgentRunRequest

    for row in rows:
        BaseRunRequest.model_validate(row)
        SimpleAgentRunRequest.model_validate(row)
    policy_port = _free_port()
    servers = [await _serve(_policy_app(), policy_port)]
    agents = _agents(envs, policy_port)
    for _, port, app in agents.values():
        servers.append(await _serve(app, port))
    urls = {name: f"http://127.0.0.1:{port}" for name, (_, port, _) in agents.items()}
    try:
        rollouts = await asyncio.gather(*(_run(urls[row["agent_ref"]["name"]], row) for row in rows))
        metrics = {name: await _metrics(urls[name], answers) for name, answers in RESULTS.items()}
        firsts = [next(r for r in rows if r["agent_ref"]["name"] == name) for name in urls]
        WRONG["on"] = True
        wrong = [await _run(urls[row["agent_ref"]["name"]], row) for row in firsts]
        WRONG["on"] = False
        direct = [await _direct(envs[agents[row["agent_ref"]["name"]][0]], row) for row in firsts]
    finally:
        for server, task in servers:
            server.should_exit = True
            await task
    from importlib.metadata import version
    return {"gym_version": version("nemo-gym"), "rows_validated": len(rows), "rollouts": rollouts,
            "wrong": wrong, "direct": direct, "metrics": metrics}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", required=True, metavar="TASK=URL",
                        help="an environment server to probe, by task name (repeatable)")
    parser.add_argument("--rows", required=True, help="JSONL file of dataset rows")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # Gym reads hydra overrides from sys.argv if anything asks for its global config
    import os
    import tempfile
    os.chdir(tempfile.mkdtemp(prefix="gym-env-probe-"))  # ... and hydra writes outputs/ into the working dir
    envs = dict(spec.split("=", 1) for spec in args.env)
    with open(args.rows) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print(json.dumps(asyncio.run(main(envs, rows))))
