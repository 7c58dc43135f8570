#!/usr/bin/env bash
# Side environments with the real NeMo Gym, one per verified version: .venv-gym/<version>, CPython 3.12.
#
# The harness claims to drive endpoints exactly as Gym's model server does; the tests under tests/gym/
# prove it by running Gym's own converter and vllm_model server (scripts/gym_bridge.py) beside ours.
# nemo-gym 0.7.0 declares Python >= 3.13.14, which this machine kind lacks; its pure-Python converter and
# model server run on 3.12, so it is installed with --ignore-requires-python (measured: every test passes).
# Dependencies come from the frozen lists requirements/gym-<version>.txt, installed with --no-deps, so CI
# gets exactly the environment the tests were verified in.
#
# Idempotent (a stamp per version). No Python 3.12 on the machine: says so, writes the reason to
# .venv-gym/UNAVAILABLE (the tests skip with it) and exits 0. Any other failure: one line, exit 2.
#   --relock   resolve nemo-gym's dependencies afresh and rewrite requirements/gym-<version>.txt
set -euo pipefail
cd "$(dirname "$0")/.."

VERSIONS=(0.4.0 0.7.0)
ROOT="${GYM_CONFORMANCE_GYM_ENVS:-.venv-gym}"
die() { echo "setup-gym: $*" >&2; exit 2; }
mkdir -p "$ROOT"

# pyenv's shim may exist and not answer (no global 3.12 selected), so ask each candidate for its version.
find_python() {
  local c
  for c in "${GYM_CONFORMANCE_PYTHON312:-}" "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12 \
           "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12 python3.12; do
    [ -n "$c" ] || continue
    if out=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && [ "$out" = "3.12" ]; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

if ! PY=$(find_python); then
  reason="no CPython 3.12 interpreter found (looked in \$GYM_CONFORMANCE_PYTHON312, pyenv's versions folder, /usr/bin, /usr/local/bin, PATH); nemo-gym needs Python >= 3.12"
  echo "$reason" > "$ROOT/UNAVAILABLE"
  echo "setup-gym: $reason; the real-Gym tests will be skipped with this reason"
  exit 0
fi
rm -f "$ROOT/UNAVAILABLE"

quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

install_one() {  # version -> .venv-gym/<version>
  local v=$1 venv="$ROOT/$1" lock="requirements/gym-$1.txt"
  local want; want=$(cat "$lock" scripts/setup-gym-env.sh | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$want" ]; then
    echo "setup-gym: nemo-gym $v is up to date"; return 0
  fi
  rm -rf "$venv"
  "$PY" -m venv "$venv"
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
  quiet "${pip[@]}" install --no-deps -r "$lock" || { echo "setup-gym: installing $lock failed" >&2; return 2; }
  quiet "${pip[@]}" install --no-deps --ignore-requires-python "nemo-gym==$v" \
    || { echo "setup-gym: installing nemo-gym==$v failed" >&2; return 2; }
  "$venv/bin/python" scripts/gym_bridge.py version | grep -qx "$v" \
    || { echo "setup-gym: nemo-gym $v does not import in $venv" >&2; return 2; }
  echo "$want" > "$venv/.stamp"
  echo "setup-gym: nemo-gym $v ready in $venv"
}

relock_one() {
  local v=$1 tmp; tmp=$(mktemp -d)
  "$PY" -m venv "$tmp/venv"
  quiet "$tmp/venv/bin/python" -m pip install --quiet --ignore-requires-python "nemo-gym==$v"
  { echo "# Exact dependency set of nemo-gym==$v on CPython 3.12 (resolved by pip, then frozen; regenerate with"
    echo "# scripts/setup-gym-env.sh --relock). Installed with --no-deps so CI gets the environment the tests were verified in."
    "$tmp/venv/bin/python" -m pip freeze | grep -v '^nemo-gym'; } > "requirements/gym-$v.txt"
  rm -rf "$tmp"
}

if [ "${1:-}" = "--relock" ]; then
  for v in "${VERSIONS[@]}"; do relock_one "$v" & done; wait
  echo "setup-gym: relocked ${VERSIONS[*]}"
fi

# The versions install in parallel: most of the time is download and unpacking.
pids=()
for v in "${VERSIONS[@]}"; do install_one "$v" & pids+=($!); done
status=0
for p in "${pids[@]}"; do wait "$p" || status=2; done
[ "$status" = 0 ] || die "a nemo-gym side environment failed to install (see above)"
