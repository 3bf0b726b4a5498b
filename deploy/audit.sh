#!/usr/bin/env bash
# Dependency audit of the project's virtualenv (`make audit`).
# 1. `pip check`: installed packages satisfy each other's requirements (offline, always).
# 2. pip-audit against the advisory database (PyPI's JSON API, or OSV with AUDIT_SERVICE=osv).
#    Without network access to it the step says so and is skipped, unless AUDIT_STRICT=1.
# pip-audit lives in its own virtualenv so its dependencies never change the project's.
set -uo pipefail
VENV="${1:-.venv}"
AUDIT_VENV="${AUDIT_VENV:-.venv-audit}"
SERVICE="${AUDIT_SERVICE:-pypi}"

"$VENV/bin/python" -m pip check || { echo "audit: pip check found broken requirements" >&2; exit 1; }

if [ ! -x "$AUDIT_VENV/bin/pip-audit" ]; then
  python3 -m venv "$AUDIT_VENV" && "$AUDIT_VENV/bin/python" -m pip install --quiet pip-audit \
    || { echo "audit: cannot install pip-audit; vulnerability scan skipped" >&2; [ "${AUDIT_STRICT:-0}" = 1 ] && exit 1; exit 0; }
fi
frozen="$(mktemp)"
trap 'rm -f "$frozen"' EXIT
"$VENV/bin/python" -m pip freeze --exclude-editable > "$frozen"
out="$("$AUDIT_VENV/bin/pip-audit" -r "$frozen" --no-deps --disable-pip -s "$SERVICE" --progress-spinner off 2>&1)"
rc=$?
audited=$(grep -c . "$frozen")
skipped=$(grep -c "could not be audited" <<<"$out")
if [ "$rc" -ne 0 ] && grep -q "Found [0-9]* known vulnerabilit" <<<"$out"; then
  echo "$out" | grep -v "could not be audited"
  exit 1
fi
if [ "$rc" -ne 0 ] || [ "$skipped" -ge "$audited" ]; then
  echo "audit: advisory database ($SERVICE) unreachable; only pip check ran. Run \`make audit\` where it is reachable." >&2
  [ "${AUDIT_STRICT:-0}" = 1 ] && exit 1
  exit 0
fi
echo "$out" | grep -v "could not be audited"
echo "audit: $((audited - skipped))/$audited packages checked, $skipped not found in the advisory database"
