"""E26's alignment rule on log prob sequences (pure logic; the zoo proves the check on a served mutant)."""
from __future__ import annotations

import random

from conformance.checks.fidelity import alignment_errors, misalignment

# Rescored log probs of one tiny-chatml generation: a near-uniform model, neighbours differ by ~0.18 nats.
# With the old absolute floor (0.2) a bundle shifted by one position passed E26 on 2 draws in 30.
FLAT = [-6.61, -6.88, -6.91, -6.96, -7.29, -6.71, -6.91, -6.75, -6.61, -6.74, -6.82, -6.49, -6.95, -6.92, -6.76,
        -7.11]


def _late(seq: list[float]) -> list[float]:
    return [seq[0], *seq[:-1]]  # each position carries the log prob of the token before


def _early(seq: list[float]) -> list[float]:
    return [*seq[1:], seq[-1]]


def test_a_late_bundle_on_a_near_uniform_model_is_named():
    assert misalignment(alignment_errors([(_late(FLAT), FLAT)])) == -1


def test_an_early_bundle_is_named():
    assert misalignment(alignment_errors([(_early(FLAT), FLAT)])) == 1


def test_an_honest_bundle_with_engine_noise_passes():
    rng = random.Random(0)
    for scale in (1e-4, 1e-2, 0.04):  # up to M24's tolerance
        served = [x + rng.gauss(0, scale) for x in FLAT]
        assert misalignment(alignment_errors([(served, FLAT)])) is None, scale


def test_a_constant_sequence_cannot_show_a_shift():
    const = [-1.0] * 8
    assert misalignment(alignment_errors([(_late(const), const)])) is None


def test_off_policy_but_aligned_is_left_to_m24():
    # every position 0.5 nats off, but no offset fits better: a tolerance failure, not a structural one
    rng = random.Random(1)
    served = [x + rng.choice((-0.5, 0.5)) for x in FLAT]
    assert misalignment(alignment_errors([(served, FLAT)])) is None
