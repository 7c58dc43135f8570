"""The ``gym-conformance`` command: a thin dispatcher over the harness and the reference implementation.

This is the only module that may name both ``conformance`` and ``reference_impl``; it imports a
subcommand's module only when that subcommand runs, so ``gym-conformance run`` never loads vLLM.
"""
