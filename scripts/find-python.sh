#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter (ansible 14 needs it), or explain how to get one.
# Order: $LAB_PYTHON, python3.13/python3.12 on PATH, pyenv's versions (newest first), python3.
set -euo pipefail

ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }

if [ -n "${LAB_PYTHON:-}" ]; then
  if [ -x "$(command -v "$LAB_PYTHON" 2>/dev/null)" ] && ok "$LAB_PYTHON"; then
    command -v "$LAB_PYTHON"
    exit 0
  fi
  echo "error: LAB_PYTHON=$LAB_PYTHON is not a Python >= 3.12 interpreter; unset it or point it at one." >&2
  exit 1
fi

candidates=()
for name in python3.14 python3.13 python3.12; do
  command -v "$name" >/dev/null 2>&1 && candidates+=("$(command -v "$name")")
done
pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
if [ -d "$pyenv_root/versions" ]; then
  while IFS= read -r dir; do
    candidates+=("$dir/bin/python")
  done < <(find "$pyenv_root/versions" -maxdepth 1 -mindepth 1 -name '3.1[2-9]*' | sort -rV)
fi
command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")

for py in "${candidates[@]}"; do
  if [ -x "$py" ] && ok "$py"; then
    echo "$py"
    exit 0
  fi
done

cat >&2 <<'MSG'
error: no Python >= 3.12 found (ansible 14 needs it).
Install one (e.g. `pyenv install 3.13`, or your distribution's python3.12/python3.13 package with venv),
or point LAB_PYTHON at it: make lab LAB_PYTHON=/path/to/python3.13
MSG
exit 1
