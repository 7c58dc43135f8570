"""The reference GRPO loop: trains a policy through the reference server on Gym environments (issue 11).

Read ``train.py`` top to bottom: refit, rollouts, sequences from served ids, group advantages, clipped
policy-gradient loss, logging. The pure pieces (``advantages``, ``sequences``, ``loss``) are plain functions
tested on their own; IO (HTTP to the model server and the environment, files, child processes) lives in
``rollout.py``, ``servers.py`` and ``checkpoint.py``.
"""
