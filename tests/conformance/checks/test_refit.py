"""R8 over real HTTP: the mutant zoo on the transformers engine, the reference mount and the stale-weights mount.

The fake endpoint has no model to rescore against, so R8 is proven here against real servers: the
reference reloads what its refit hook is given, the stale-weights mutant acknowledges and loads nothing.
"""
import sys

import pytest

from conformance._process import ServerProcess, free_port
from conformance.checks import Context, Target, run_check
from conformance.core import CheckFailure
from fixtures import fixture_path

pytestmark = pytest.mark.slow
CHATML = str(fixture_path("tiny-chatml"))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    port = free_port()
    argv = [sys.executable, "-m", "reference_impl.mutants", "--engine", "hf", "--port", str(port),
            "--served-model-name", "tiny", "--max-model-len", "1024"]
    with ServerProcess(argv, port, timeout=180, log_path=tmp_path_factory.mktemp("zoo") / "zoo.log") as server:
        yield server.url


def _ctx(zoo, mount, runner, **target):
    return Context(Target(f"{zoo}/{mount}/v1", model="tiny", tokenizer=CHATML, rescore_model=CHATML,
                          refit_url=f"{zoo}/{mount}/weights/reload", **target), runner)


def test_reference_follows_the_refit(zoo, runner):
    ctx = _ctx(zoo, "reference", runner)
    run_check(ctx, "R8")


def test_stale_weights_fail_r8_naming_the_cause(zoo, runner):
    ctx = _ctx(zoo, "stale-weights", runner)
    with pytest.raises(CheckFailure, match=r"after a refit to .* still disagree with those weights.*stale weights") \
            as info:
        run_check(ctx, "R8")
    assert info.value.evidence.metrics["token_mult_prob_error"] > 1.05


def test_without_a_refit_hook_r8_is_skipped_with_the_reason(zoo, runner):
    from conformance.core import CheckSkipped

    ctx = _ctx(zoo, "reference", runner)
    ctx.target.refit_url = None
    with pytest.raises(CheckSkipped, match="--refit-url"):
        run_check(ctx, "R8")


def test_a_refit_hook_that_errors_fails_r8(zoo, runner):
    ctx = _ctx(zoo, "reference", runner)
    ctx.target.refit_url = f"{zoo}/reference/weights/no-such-route"
    with pytest.raises(CheckFailure, match="the refit hook answered HTTP 404"):
        run_check(ctx, "R8")
