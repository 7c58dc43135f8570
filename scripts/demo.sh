#!/usr/bin/env bash
# `make demo`: reference server on tiny-chatml + the conformance suite against it -> reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c 'import reference_impl.server.cli, conformance.plugin.cli' 2>/dev/null; then
  echo "demo: fixtures are built; the reference server and the conformance suite are not in this checkout yet."
  exit 0
fi
exec .venv/bin/python -m gym_conformance demo "$@"
