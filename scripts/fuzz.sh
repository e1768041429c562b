#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME each (go test allows
# only one -fuzz target per invocation, so they are found and run in turn),
# minimising new inputs for at most $FUZZMINTIME: large MedCom seeds stall
# the default 60 s.
set -euo pipefail
FUZZTIME="${FUZZTIME:-10m}"
cd "$(dirname "$0")/.."
found=0
while IFS= read -r file; do
  pkg="./$(dirname "$file")"
  for fn in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)' "$file" | awk '{print $2}'); do
    found=1
    echo "fuzz $pkg $fn for $FUZZTIME"
    log=$(mktemp)
    if ! go test -run "^$" -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "${FUZZMINTIME:-10s}" "$pkg" 2>&1 | tee "$log"; then
      # Go 1.26 can end a duration-bound run with a bare "context deadline
      # exceeded" and no finding (go.dev/issue/75804). A real finding always
      # writes its input; anything else still fails.
      if grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
        echo "fuzz $pkg $fn: deadline at the end of the run, no failing input (go.dev/issue/75804); not a finding"
      else
        rm -f "$log"
        exit 1
      fi
    fi
    rm -f "$log"
  done
done < <(git ls-files -co --exclude-standard '*_test.go' | xargs grep -l '^func Fuzz' 2>/dev/null || true)
if [ "$found" = 0 ]; then echo "no fuzz targets"; fi
