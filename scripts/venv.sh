# Sourced by the other scripts: make sure .venv/ exists and holds the project (and extras, if named).
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
_extras="${1:-}"
_stamp=".venv/.installed-${_extras:-base}"
# Reinstall only when pyproject.toml changed since the last install.
if [ ! -f "$_stamp" ] || [ pyproject.toml -nt "$_stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${_extras:+[$_extras]}"
  touch "$_stamp"
fi
unset _extras _stamp
