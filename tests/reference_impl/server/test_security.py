"""Security basics of the reference server (issue 13): weight reloads confined to allowed roots (no path
traversal, no symlink out), bounded request bodies and message counts, loopback by default. Every refusal is
an OpenAI-style error naming the field, and the server keeps serving."""
from __future__ import annotations

import argparse
import os
import shutil

import pytest
from fastapi.testclient import TestClient

from fixtures import fixture_path
from reference_impl.server.app import create_app
from reference_impl.server.cli import add_arguments
from reference_impl.server.engines.hf import HFEngine
from reference_impl.server.protocol import MAX_MESSAGES
from reference_impl.server.service import Service

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def parts():
    from transformers import AutoTokenizer

    model_dir = fixture_path("tiny-chatml")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return model_dir, tokenizer, HFEngine(model_dir, eos_token_id=tokenizer.eos_token_id, max_model_len=256)


@pytest.fixture
def root(tmp_path, parts):
    """An allowed root holding a copy of the weights, beside a forbidden directory holding another copy."""
    model_dir = parts[0]
    shutil.copytree(model_dir, tmp_path / "root" / "step-1")
    shutil.copytree(model_dir, tmp_path / "outside")
    os.symlink(tmp_path / "outside", tmp_path / "root" / "link-out")
    return tmp_path / "root"


def client(parts, roots=None, **app):
    model_dir, tokenizer, engine = parts
    service = Service(tokenizer, engine, served_model_name="tiny", model_path=str(model_dir), weights_roots=roots)
    return TestClient(create_app(service, **app))


def test_reloads_read_only_under_the_allowed_roots(parts, root):
    with client(parts, roots=[root]) as c:
        assert c.post("/weights/reload", json={"path": str(root / "step-1")}).status_code == 200
        assert c.post("/weights/reload", json={"path": str(parts[0])}).status_code == 200  # the model's own
        for path in (root / ".." / "outside", root / "link-out", root.parent / "outside", "step-1", "/etc"):
            r = c.post("/weights/reload", json={"path": str(path)})
            err = r.json()["error"]
            assert r.status_code == 403 and err["param"] == "path" and err["type"] == "permission_error", r.text
            assert "weights root" in err["message"]
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200  # still serving


def test_by_default_the_working_and_temp_directories_are_roots(parts, root):
    with client(parts) as c:  # tmp_path lives under the system temp directory
        assert c.post("/weights/reload", json={"path": str(root / "step-1")}).status_code == 200
        assert c.post("/weights/reload", json={"path": "/usr/lib"}).status_code == 403
        c.post("/weights/reload", json={"path": str(parts[0])})


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(parts):
    with client(parts, max_body_bytes=2000) as c:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 4000}]}
        r = c.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and "--max-body-bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the server must stop reading at the limit
            yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        r = c.post("/v1/chat/completions", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_the_message_count_is_bounded(parts):
    with client(parts) as c:
        many = {**CHAT, "messages": [{"role": "user", "content": "a"}] * (MAX_MESSAGES + 1)}
        for route, body in (("/v1/chat/completions", many), ("/tokenize", {"messages": many["messages"]})):
            r = c.post(route, json=body)
            assert r.status_code == 400 and r.json()["error"]["param"].startswith("messages"), r.text


def test_servers_listen_on_loopback_unless_told_otherwise():
    from reference_impl.envs import cli as env_cli
    from reference_impl.mutants import host

    for add, argv in ((add_arguments, ["--model", "m"]), (env_cli.add_arguments, ["serve", "--task", "arith"])):
        parser = argparse.ArgumentParser()
        add(parser)
        assert parser.parse_args(argv).host == "127.0.0.1"
    args = argparse.ArgumentParser()
    add_arguments(args)
    args = args.parse_args(["--model", "m"])
    assert args.weights_root is None and args.max_body_bytes == 64 * 2**20
    assert "add_arguments" in host.main.__code__.co_names  # the mutant zoo host takes the server's own options
