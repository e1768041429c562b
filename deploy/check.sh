#!/usr/bin/env bash
# Checks every file in deploy/ with the tool made for it:
#   go test ./deploy            NATS configs (nats-server's parser), Kubernetes YAML,
#                               dashboard and alert metric names, runbook anchors
#   promtool check/test rules   alert rules and their unit tests
#   promtool check rules        the dashboard's PromQL, wrapped as recording rules
#   systemd-analyze verify      the systemd unit (plus its offline security score)
#   the unit's ExecStartPre     `samhub config check`, run as systemd would run it (its
#                               Environment= lines, %d as a credentials directory holding
#                               each LoadCredential= file) against systemd/samhub.yaml;
#                               and `config check` of the demo and Kubernetes configurations
# A missing tool is installed (scripts/need.sh, as root with apt-get) or is an
# error saying what to install; pass --allow-missing to only warn about it.
set -euo pipefail
cd "$(dirname "$0")"
allow_missing=0
[ "${1:-}" = "--allow-missing" ] && allow_missing=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ "$allow_missing" = 1 ] || ../scripts/need.sh promtool:prometheus systemd-analyze:systemd
missing() {
  if [ "$allow_missing" = 1 ]; then echo "WARNING: $1 not installed, not checked"; else echo "ERROR: $1 not installed" >&2; exit 1; fi
}

echo "== go test ./deploy"
(cd .. && go test -count=1 ./deploy)

echo "== samhub config check (the unit's pre-start and the shipped configurations)"
(cd .. && CGO_ENABLED=0 go build -o "$tmp/samhub" ./cmd/samhub)
creds="$tmp/credentials"
mkdir -p "$creds"
# Each credential the unit loads, as a stand-in file.
sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' systemd/samhub.service | while read -r name; do
  printf 'stand-in for %s\n' "$name" > "$creds/$name"
done
pre=$(sed -n 's/^ExecStartPre=//p' systemd/samhub.service)
[ -n "$pre" ] || { echo "ERROR: the unit has no ExecStartPre" >&2; exit 1; }
(
  # The unit's environment, %d being its credentials directory.
  while IFS= read -r kv; do export "${kv//%d/$creds}"; done < <(sed -n 's/^Environment=//p' systemd/samhub.service)
  cmd=${pre//\/usr\/local\/bin\/samhub/$tmp\/samhub}
  cmd=${cmd//\/etc\/samhub\/samhub.yaml/systemd\/samhub.yaml}
  echo "+ $cmd"
  $cmd
)
"$tmp/samhub" config check demo/samhub.yaml
# The ConfigMap's samhub.yaml: the block under "samhub.yaml: |", unindented.
awk '/^  samhub.yaml: \|/ {on=1; next} on && /^    / {print substr($0, 5); next} on && /^ *$/ {print ""; next} on {exit}' kubernetes/configmap.yaml > "$tmp/cluster.yaml"
# The Secret samhub-adapters is mounted in the pod; a stand-in file here.
printf 'stand-in\n' > "$creds/casesystem-client-secret"
SAMHUB_ADAPTERS_CASESYSTEM_CLIENT_SECRET_FILE="$creds/casesystem-client-secret" "$tmp/samhub" config check "$tmp/cluster.yaml"

if command -v promtool >/dev/null; then
  echo "== promtool"
  promtool check rules prometheus/samhub-alerts.yml
  (cd prometheus && promtool test rules samhub-alerts_test.yml)
  # Grafana variables replaced by plain values so promtool can parse the queries.
  python3 - grafana/samhub-dashboard.json > "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
exprs = []
def walk(v):
    if isinstance(v, dict):
        for k, e in v.items():
            if k == "expr" and isinstance(e, str):
                exprs.append(e)
            else:
                walk(e)
    elif isinstance(v, list):
        for e in v:
            walk(e)
walk(json.load(open(sys.argv[1])))
subst = {"$__rate_interval": "5m", "$destination": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    rules.append({"record": "dashboard:query_%d" % i, "expr": e})
print(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
PY
  echo "dashboard queries:"
  promtool check rules "$tmp/dashboard-rules.yml"
else
  missing promtool
fi

if command -v systemd-analyze >/dev/null; then
  echo "== systemd-analyze"
  # verify insists that ExecStart exists; point it at a binary that does.
  sed 's|/usr/local/bin/samhub|/bin/true|' systemd/samhub.service > "$tmp/samhub.service"
  out=$(systemd-analyze verify "$tmp/samhub.service" 2>&1 || true)
  if [ -n "$out" ]; then echo "$out" >&2; echo "ERROR: systemd-analyze verify complained" >&2; exit 1; fi
  echo "systemd/samhub.service: verify OK"
  systemd-analyze security --offline=yes "$tmp/samhub.service" 2>/dev/null | grep 'Overall exposure' || true
else
  missing systemd-analyze
fi
echo "deploy: all checks passed"
