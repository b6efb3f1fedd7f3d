#!/usr/bin/env bash
# Run the differential fuzz target for a while: fuzz/run.sh [SECONDS] [--no-<family>...] [libFuzzer flags...]
#
#   fuzz/run.sh              # 60 s, everything on (what CI runs)
#   fuzz/run.sh 3600 -jobs=1 -workers=1
#   fuzz/run.sh 600 --no-reentry
#
# New interesting inputs go to $FUZZ_WORKDIR/corpus (default: a fresh temporary directory; the
# committed seeds in fuzz/corpus are read, never written), crash reproducers to
# $FUZZ_WORKDIR/artifacts/. Exits non-zero on a crash, a divergence or a broken invariant.
# $PYTHON picks the interpreter (default: .venv/bin/python if there is one, else python).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
python=${PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x .venv/bin/python ]]; then python=.venv/bin/python; else python=python; fi
fi
work=${FUZZ_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/tradebook-fuzz.XXXXXX")}
mkdir -p "$work/corpus" "$work/artifacts"
echo "fuzz/run.sh: ${seconds}s, corpus $work/corpus, reproducers in $work/artifacts/" >&2
exec "$python" fuzz/fuzz_core.py "$@" \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" fuzz/corpus
