"""The benchmark tasks as real NeMo Gym resources servers: a framework's own Gym integration trains on them.

    python -m reference_impl.envs serve --task lookup --port 8123     # or: gym-conformance env serve ...
    python -m reference_impl.envs data --task lookup --out data/      # the JSONL rows (fixtures.tasks)

Layout: ``errors`` (the OpenAI error object), ``verify`` (pure scoring over a Responses-API response),
``sessions`` (per-rollout state behind a cookie), ``tasks`` (the registry: per task its state, verifier and
tool routes), ``app`` (the FastAPI server), ``cli``. The HTTP contract is Gym 0.7.0's resources-server
contract, reproduced with this project's own code (nemo_gym needs Python 3.12 and is not a dependency);
``tests/reference_impl/envs/test_real_gym.py`` proves it against Gym's own simple agent and models.
This package imports ``fixtures`` and third-party packages only (the ``envs-alone`` import contract).
"""
