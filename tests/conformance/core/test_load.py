"""The load tier's pure arithmetic: percentiles, per-endpoint figures, which weights served a response."""
import pytest

from conformance.client import endpoint_for_session
from conformance.core import Timed, endpoint_figures, max_in_flight, percentile, served_by, went_back


def test_percentile_interpolates_between_order_statistics():
    xs = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 0) == 1.0 and percentile(xs, 100) == 5.0
    assert percentile(xs, 99) == pytest.approx(4.96)
    assert percentile([7.0], 99) == 7.0


def test_endpoint_figures_count_errors_and_time_only_answered_calls():
    calls = [Timed("a", 0.0, 1.0), Timed("a", 0.0, 3.0), Timed("a", 0.5, 0.6, error="HTTP 503"),
             Timed("b", 1.0, 2.0)]
    figs = endpoint_figures(calls, wall_s=4.0)
    assert figs["a"] == {"calls": 3, "errors": 1, "error_rate": 0.3333, "throughput_per_s": 0.5,
                         "p50_s": 2.0, "p99_s": 2.98}
    assert figs["b"]["calls"] == 1 and figs["b"]["errors"] == 0 and figs["b"]["p99_s"] == 1.0


def test_max_in_flight_sweeps_send_and_answer_times():
    calls = [Timed("a", 0, 10), Timed("a", 1, 2), Timed("a", 1.5, 3), Timed("a", 2, 4), Timed("a", 5, 6)]
    assert max_in_flight(calls) == 3  # at 2.0 the call answered leaves before the one sent arrives
    assert max_in_flight([]) == 0


@pytest.mark.parametrize("served, rescored, verdict", [
    ([-1.0, -2.0, -0.5, -3.0], [-1.0, -2.001, -0.5, -3.0], "new"),       # every position within tolerance
    ([-1.0, -2.0, -0.5, -3.0], [-1.4, -2.5, -0.1, -2.2], "old"),         # none matches
    ([-1.0, -2.0, -0.5, -3.0, -1.1], [-1.5, -2.6, -0.5, -3.0, -1.1], "mixed"),  # switched after two tokens
    ([-1.0, -2.0, -0.5, -3.0], [-1.5, -2.0, -0.5, -3.0], "mixed"),
    ([-1.0, -2.0, -0.5], [-1.5, -2.0, -0.5], "old"),                     # two matching positions could be chance
    ([-1.0, -2.0, -0.5, -3.0], [-1.0, -2.0, -0.9, -3.0], "old"),         # starts on the new weights: not a switch
])
def test_served_by(served, rescored, verdict):
    assert served_by(served, rescored) == verdict


def test_served_by_refuses_unequal_lengths():
    with pytest.raises(ValueError, match="length mismatch"):
        served_by([-1.0], [-1.0, -2.0])


def test_went_back_only_when_new_weights_are_followed_by_old():
    assert not went_back(["old", "old", "new", "new"])
    assert not went_back(["old", "mixed", "new"])
    assert went_back(["new", "old"])
    assert went_back(["old", "mixed", "old"])


def test_session_affinity_is_gyms_hash():
    # Gym 0.7.0 _resolve_client: sha256(session id)[:8] big-endian modulo the number of endpoints
    import hashlib
    for sid in ("s00000r0", "s00001r0", "a-uuid-4d3f"):
        want = int.from_bytes(hashlib.sha256(sid.encode()).digest()[:8], "big") % 3
        assert endpoint_for_session(sid, 3) == want
    spread = {endpoint_for_session(f"s{i:05d}r0", 2) for i in range(16)}
    assert spread == {0, 1}
