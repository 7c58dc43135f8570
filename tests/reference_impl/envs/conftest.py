"""The environment servers live in tests/conftest.py (``arith_env``, ``lookup_env``): the GRPO tests share them."""
