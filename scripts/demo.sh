#!/usr/bin/env bash
# The demo behind `make demo`: sandbox up, sync, show the drafts, sync again, sandbox down.
set -euo pipefail
BIN=$1 DEMO=$2 PERIOD=$3
mkdir -p "$DEMO"
rm -f "$DEMO"/hourbridge.db*

"$BIN/hourbridge" sandbox --harvest-port 8765 --xero-port 8766 >"$DEMO/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true; wait $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^ready$' "$DEMO/sandbox.log" 2>/dev/null && break
  kill -0 $SANDBOX 2>/dev/null || { cat "$DEMO/sandbox.log"; exit 1; }
  sleep 0.1
done
grep -q '^ready$' "$DEMO/sandbox.log" || { echo "sandbox did not start"; cat "$DEMO/sandbox.log"; exit 1; }
head -n 3 "$DEMO/sandbox.log"

export HARVEST_ACCESS_TOKEN=sandbox-harvest-token
export XERO_ACCESS_TOKEN=sandbox-xero-token

echo
echo "== first sync: $PERIOD into the fake Xero (SQLite at $DEMO/hourbridge.db) =="
"$BIN/hourbridge" sync --config config.example.yaml --period "$PERIOD" 2>"$DEMO/sync1.log"

echo
echo "== second sync of the same period: must create nothing =="
"$BIN/hourbridge" sync --config config.example.yaml --period "$PERIOD" --json 2>"$DEMO/sync2.log" >"$DEMO/rerun.json"
"$BIN/python" - "$DEMO/rerun.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for key in ("invoices_created", "invoices_updated", "invoices_unchanged", "entries_billed"):
    print(f"{key}: {report[key]}")
if report["invoices_created"] != 0:
    sys.exit("the re-run created invoices: idempotency is broken")
PY
