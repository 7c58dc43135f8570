"""The vLLM plugin that bounds the shared-memory readers' busy-wait (reference_impl/server/engines/vllm_idle_spin.py).

Unit tests on vLLM's own ``SpinCondition``; the server-level effect (an idle engine stops using the CPU, stock
vLLM's does not) is measured in ``test_vllm_server.py``.
"""
from __future__ import annotations

import pytest

from reference_impl.server.engines import vllm_idle_spin
from reference_impl.server.engines.vllm_idle_spin import ENV, idle_spin_seconds, register

zmq = pytest.importorskip("zmq")
shm_broadcast = pytest.importorskip("vllm.distributed.device_communicators.shm_broadcast")


@pytest.mark.parametrize(("raw", "seconds"), [(None, None), ("", None), ("0", 0.0), ("0.01", 0.01), ("2", 2.0)])
def test_the_setting_is_read_in_seconds(raw, seconds):
    assert idle_spin_seconds({} if raw is None else {ENV: raw}) == seconds


@pytest.mark.parametrize("raw", ["fast", "-1", "nan"])
def test_a_bad_setting_is_one_clear_error(raw):
    with pytest.raises(ValueError, match=f"{ENV} must be"):
        idle_spin_seconds({ENV: raw})


def _readers_spin(context) -> tuple[float, float]:
    writer = shm_broadcast.SpinCondition(False, context, "inproc://idle-spin-test")
    reader = shm_broadcast.SpinCondition(True, context, "inproc://idle-spin-test")
    for sock in (reader.local_notify_socket, reader.write_cancel_socket, reader.read_cancel_socket,
                 writer.local_notify_socket):
        sock.close(linger=0)  # before the context ends: zmq aborts the process on a context torn down under them
    return reader.busy_loop_s, writer.busy_loop_s


@pytest.fixture
def context(monkeypatch):
    monkeypatch.setattr(shm_broadcast.SpinCondition, "__init__", shm_broadcast.SpinCondition.__init__)  # restored
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def test_unset_leaves_vllms_own_busy_wait(context, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    register()
    assert _readers_spin(context) == (1, 0)


def test_set_bounds_every_reader_and_loading_twice_is_harmless(context, monkeypatch):
    monkeypatch.setenv(ENV, "0.01")
    register()
    monkeypatch.setenv(ENV, "0.02")
    register()  # vLLM loads general plugins once per process, but may import them in several places
    assert _readers_spin(context) == (0.02, 0)


def test_the_plugin_is_registered_with_vllm():
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="vllm.general_plugins")}
    assert f"{vllm_idle_spin.__name__}:register" in names
