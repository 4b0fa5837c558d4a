#!/usr/bin/env bash
# Shows that regression tracking catches a real slowdown: in a throwaway clone, commit a
# deliberately slowed reader (1 ms sleep per chunk decode) on a branch, then run the same
# `make bench-compare` a developer would, on the smoke profile and the random-access suite.
# Exits 0 when the slowdown was flagged (asv continuous failed), 1 when it was missed.
set -uo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/repo"
cd "$work/repo"
ln -s "$repo/.venv" .venv            # reuse the project's environment for asv itself
base=$(git rev-parse HEAD)
git checkout -q -b regression-demo
python3 - <<'PY'
from pathlib import Path
p = Path("eegbench/formats/_chunks.py")
s = p.read_text()
s = s.replace("                    arr = self._load_chunk(index)",
              "                    import time; time.sleep(0.001)  # DELIBERATE REGRESSION (demo)\n"
              "                    arr = self._load_chunk(index)")
p.write_text(s)
PY
git -c user.name=demo -c user.email=demo@example.invalid commit -qam "demo: deliberately slow chunk reads"
EEGBENCH_PROFILE=smoke .venv/bin/asv machine --yes >/dev/null
EEGBENCH_PROFILE=smoke .venv/bin/asv continuous --factor 1.5 --split --show-stderr \
    -b 'RandomWindow.track_ms_per_window' "$base" HEAD | tee "$work/compare.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ] && grep -q "PERFORMANCE DECREASED\|SOME BENCHMARKS HAVE CHANGED SIGNIFICANTLY" "$work/compare.log"; then
    echo "regression demo: the slowed reader was flagged (asv continuous exit $status)"
    exit 0
fi
echo "regression demo: the slowdown was NOT flagged (exit $status)"
exit 1
