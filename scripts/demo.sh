#!/usr/bin/env bash
# `make demo`: migrate, start ingest and the API, then run a small simulated Anyang fleet live
# with the `demo` scenario: a cloudburst floods the unremediated points, a cover opens, a DMA
# bursts, a lighting circuit loses supply and a gas reading rises, and the alerts of all five
# (cover, gas, storm incident, circuit, burst) appear within the simulator's first minute;
# more events follow every few minutes (simulators/scenarios/demo.yaml). For that the
# simulator replays its first 4 simulated minutes at 8x, runs in the small hours (behind
# the wall clock at other hours), and the DMAs get 4 days of history first (simulators/demo.py,
# docs/simulators.md "make demo"); the alert rules and detectors are the shipped ones.
# The alert engine raises alerts from the same stream and the notifier delivers them to a local
# webhook receiver (the shipped routes' ops-webhook, port 9080), whose log the banner names.
# Ctrl-C stops everything cleanly.
# The demo runs its own Mosquitto that enforces broker accounts (docs/security-devices.md):
# on port 1884 (or a free one), configured under .demo/mosquitto/; every device, gateway and
# service gets a password, written to .demo/credentials.csv.
# DEMO_DURATION=N stops after N seconds; DATABASE_URL as usual (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
LOGS=.demo
BROKER="$LOGS/mosquitto"
mkdir -p "$LOGS" "$BROKER/auth"
export DATABASE_URL="${DATABASE_URL:-postgresql://127.0.0.1:5432/urbanwatch}"
export MQTT_TOPIC_PREFIX="${MQTT_TOPIC_PREFIX:-urbanwatch}"
export API_PORT="${API_PORT:-8000}"

# The API signs access tokens with API_SECRET_KEY (docs/security.md): a random one per
# checkout, kept in .demo/api-secret (mode 600) so tokens survive a restart of the demo.
if [ -z "${API_SECRET_KEY:-}" ]; then
    if [ ! -s "$LOGS/api-secret" ]; then
        (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$LOGS/api-secret")
    fi
    API_SECRET_KEY="$(cat "$LOGS/api-secret")"
fi
export API_SECRET_KEY

# The shipped routes sign webhooks with URBANWATCH_WEBHOOK_SECRET; the demo's receiver checks it.
if [ -z "${URBANWATCH_WEBHOOK_SECRET:-}" ]; then
    if [ ! -s "$LOGS/webhook-secret" ]; then
        (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$LOGS/webhook-secret")
    fi
    URBANWATCH_WEBHOOK_SECRET="$(cat "$LOGS/webhook-secret")"
fi
export URBANWATCH_WEBHOOK_SECRET
RECEIVER_PORT=9080  # the shipped routes' ops-webhook
if ! "$BIN/python" -c "import socket; socket.create_server(('127.0.0.1', $RECEIVER_PORT)).close()" 2>/dev/null; then
    echo "demo: port $RECEIVER_PORT is taken: the demo's webhook receiver needs it (stop what uses it)" >&2
    exit 1
fi

"$BIN/urbanwatch" migrate                            # also seeds the plan's targets T1-T10 (kept if edited)
"$BIN/urbanwatch" alerts routes load >"$LOGS/routes.log"  # the shipped routing

# A read-only (viewer) API key for trying the API; only its hash is stored, so a new one is
# made per run (`urbanwatch keys list` shows them, `urbanwatch keys revoke ID` ends one).
DEMO_KEY="$("$BIN/urbanwatch" keys create --name "make demo" --role viewer --expires 7d 2>/dev/null)"

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo; echo "demo: stopping ingest, the alert engine, the notifier, the API, the rollup timer and the demo broker"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# --- the broker, enforcing accounts ------------------------------------------------------
MQTT_PORT=$("$BIN/python" - <<'PY'
import socket
for port in (1884, 0):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            print(s.getsockname()[1])
            break
    except OSError:
        continue
PY
)
export MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT"
export BROKER_AUTH_DIR="$PWD/$BROKER/auth" BROKER_PID_FILE="$PWD/$BROKER/mosquitto.pid"
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    export BROKER_AUTH_OWNER=mosquitto  # mosquitto drops root and must read the files
fi
: >"$BROKER/auth/passwd"; : >"$BROKER/auth/acl"  # nobody gets in until the first sync
chmod 644 "$BROKER/auth/passwd" "$BROKER/auth/acl"
cat >"$BROKER/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
persistence false
include_dir $PWD/deploy/mosquitto/conf.d
# After the include: enforcement on (docs/security-devices.md).
allow_anonymous false
use_username_as_clientid true
password_file $BROKER_AUTH_DIR/passwd
acl_file $BROKER_AUTH_DIR/acl
CONF
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$BROKER/mosquitto.conf" \
    >"$LOGS/mosquitto.log" 2>&1 &
pids+=($!)
echo $! >"$BROKER_PID_FILE"

# --- the fleet and its credentials -------------------------------------------------------
"$BIN/urbanwatch" simulate fleet --scale small --seed 42 -q --out "$LOGS/fleet.csv" \
    --truth "$LOGS/truth-fleet.json" >"$LOGS/fleet.log"
CREDENTIALS="$LOGS/credentials.csv"
rm -f "$CREDENTIALS"
"$BIN/urbanwatch" devices credentials issue --all --rotate-existing -q --csv "$CREDENTIALS" \
    --service ingest --service simulator --service alerts --service notify
# History for the DMAs' hourly flow and pressure profiles (WS_FLOW_ANOMALY, WS_PRESSURE_DROP
# compare with them): the 4 days from 7 to 3 days ago, written straight into the database.
# Older than 3 days, so the alert engine does not take the devices as last seen then.
BACKFILL_END=$("$BIN/python" -c 'from datetime import UTC, datetime, timedelta
print((datetime.now(UTC) - timedelta(days=3, minutes=10)).isoformat(timespec="seconds"))')
"$BIN/urbanwatch" simulate backfill --scale small --seed 42 --days 4 --end "$BACKFILL_END" \
    --no-import -q --jobs 1 --truth "$LOGS/truth-backfill.json" >"$LOGS/backfill.log" 2>&1 \
    || { echo "demo: the history backfill failed; see $LOGS/backfill.log" >&2; exit 1; }
password_of() { grep "^service/$1," "$CREDENTIALS" | cut -d, -f2; }
INGEST_PASSWORD=$(password_of ingest)
SIMULATOR_PASSWORD=$(password_of simulator)
ALERTS_PASSWORD=$(password_of alerts)
NOTIFY_PASSWORD=$(password_of notify)

MQTT_USERNAME=service/ingest MQTT_PASSWORD="$INGEST_PASSWORD" \
    "$BIN/urbanwatch" ingest >"$LOGS/ingest.log" 2>&1 &
pids+=($!)
MQTT_USERNAME=service/alerts MQTT_PASSWORD="$ALERTS_PASSWORD" \
    "$BIN/urbanwatch" alerts run >"$LOGS/alerts.log" 2>&1 &
pids+=($!)
"$BIN/urbanwatch" alerts receiver --port "$RECEIVER_PORT" --secret-env URBANWATCH_WEBHOOK_SECRET \
    --log "$LOGS/webhook.jsonl" >"$LOGS/webhook.log" 2>&1 &
pids+=($!)
MQTT_USERNAME=service/notify MQTT_PASSWORD="$NOTIFY_PASSWORD" \
    "$BIN/urbanwatch" alerts notify >"$LOGS/notify.log" 2>&1 &
pids+=($!)
"$BIN/urbanwatch" api >"$LOGS/api.log" 2>&1 &
pids+=($!)
"$BIN/urbanwatch" rollup --every 300 >"$LOGS/rollup.log" 2>&1 &  # plain storage's timer
pids+=($!)

wait_for() {  # wait_for WHAT COMMAND...: up to 20 s
    local what=$1; shift
    for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "demo: $what did not come up; see $LOGS/" >&2; exit 1
}
wait_for "ingest" grep -q "ready" "$LOGS/ingest.log"
wait_for "the alert engine" grep -q "alerts engine subscribed" "$LOGS/alerts.log"
wait_for "the webhook receiver" grep -q "receiving on" "$LOGS/webhook.log"
wait_for "the API" "$BIN/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$API_PORT/health')"

# The simulated clock: 01:00-03:30 local (the circuit's supply loss needs the lamps'
# expected-on window, the burst the DMAs' quiet night flow), its first 4 minutes replayed
# at 8x (simulators/demo.py).
read -r DEMO_START DEMO_BEHIND DEMO_SPEED LAST_ALERT < <("$BIN/python" -m simulators.demo clock)
IFS=, read -r DEV_USER DEV_PASSWORD _ _ _ _ DEV_TOPICS < <(awk -F, '$4 == "device" {print; exit}' "$CREDENTIALS")
cat <<MSG

─────────────────────────── broker accounts ─────────────────────────────
 broker (enforcing)     $MQTT_URL  config $BROKER/mosquitto.conf, log $LOGS/mosquitto.log
 credentials file       $CREDENTIALS (mode 0600; every device, gateway and service)
 one device             username $DEV_USER  password $DEV_PASSWORD
                        may publish to: $DEV_TOPICS
 try it                 mosquitto_pub -p $MQTT_PORT -u '$DEV_USER' -P '$DEV_PASSWORD' \\
                          -t '${DEV_TOPICS%% *}' -m '{"ts": $(date +%s)000, "battery_v": 3.5}'
 accounts               $BIN/urbanwatch devices credentials list | head

──────────────────────────── urbanwatch demo ────────────────────────────
 API and OpenAPI docs   http://127.0.0.1:$API_PORT/docs  (Authorize: the key below)
 viewer API key         $DEMO_KEY  (read-only, 7 days)
 devices                curl -H "X-API-Key: $DEMO_KEY" 'http://127.0.0.1:$API_PORT/devices?kind=waterlog&limit=5'
 accounts               urbanwatch users add NAME --role admin   (docs/security.md)
 ingest rates           tail -f $LOGS/ingest.log
 alerts as delivered    tail -f $LOGS/webhook.log   (the signed webhooks the crews' route sends;
                          every delivery as JSON in $LOGS/webhook.jsonl)
 open alerts (psql)     psql -h 127.0.0.1 urbanwatch -c "SELECT opened_at, severity, rule_id,
                          subject, title FROM alerts WHERE status <> 'resolved' ORDER BY opened_at"
 engine, notifier       $LOGS/alerts.log, $LOGS/notify.log
 plan progress          $BIN/urbanwatch report   (targets T1-T10; KPIs after \`urbanwatch kpi snapshot\`)
 readings (psql)        psql -h 127.0.0.1 urbanwatch -c "SELECT device_id, max(depth_cm)
                          FROM waterlog_readings WHERE received_at > now() - interval '15 min'
                          GROUP BY 1 ORDER BY 2 DESC NULLS LAST LIMIT 5"
 hourly rollups         psql -h 127.0.0.1 urbanwatch -c "SELECT * FROM streetlight_hourly
                          ORDER BY bucket DESC LIMIT 5"
 dead letters           psql -h 127.0.0.1 urbanwatch -c "SELECT reason_code, count(*)
                          FROM dead_letters GROUP BY 1"
 ground truth           $LOGS/truth-demo.json (what the simulator broke, and when)
 simulated clock        from $DEMO_START (small hours: lamps on, night flow), the first
                          4 simulated minutes at ${DEMO_SPEED}x (30 s), then real time, ${DEMO_BEHIND} s
                          behind the wall clock
 Scenario 'demo', in simulated time after the simulator starts:
   +0 s    a 4-min cloudburst (300 mm/h): unremediated points WL-D-009, WL-D-010 pass
           15 cm by +2 min and report every minute and on every 2 cm
   +20 s   cover MH-000012 opens (20 min)
   +30 s   DMA-02 bursts (25 m³/h, 2 h); its loggers report every minute
   +40 s   circuit CIR-0003 loses supply (0 V) for 30 min; its lamps meter every minute
   +50 s   gas at MH-000030 (15 min, 55 % LEL: MH_GAS_L2)
   then    another cover opens every 6 min (from +4 min), gas every 15 min (+9 min), a
           circuit fault every 20 min (+12 min), a storm every 2 h (+1 h), a burst
           every hour in DMA-01 or DMA-02 (+2 h).
 The five first alerts are printed below as they appear (id, state, API URL; the API
 needs the key above), within a minute of the start.                  Ctrl-C to stop.
──────────────────────────────────────────────────────────────────────────

MSG

FIRST=(--api "http://127.0.0.1:$API_PORT" --webhook-log "$LOGS/webhook.jsonl" --after-id "$LAST_ALERT")
"$BIN/python" -m simulators.demo watch "${FIRST[@]}" --timeout 120 &
pids+=($!)
export MQTT_USERNAME=service/simulator MQTT_PASSWORD="$SIMULATOR_PASSWORD"
args=(simulate run --scale small --seed 42 --scenario demo --stagger 20
      --start "$DEMO_START" --behind "$DEMO_BEHIND" --speed "$DEMO_SPEED"
      --truth "$LOGS/truth-demo.json")
if [ -n "${DEMO_DURATION:-}" ]; then args+=(--duration "$DEMO_DURATION"); fi
"$BIN/urbanwatch" "${args[@]}" || true
MSG_END="demo: readings stored: $("$BIN/python" - <<'PY'
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as c:
    print(", ".join(f"{k} {c.execute(f'SELECT count(*) FROM {k}_readings').fetchone()[0]}"
                    for k in ("manhole", "waterlog", "streetlight", "watermeter")))
PY
)"
echo "$MSG_END"
echo "demo: alerts raised: $("$BIN/python" - <<'PY'
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as c:
    rows = c.execute("SELECT rule_id, count(*) FROM alerts GROUP BY 1 ORDER BY 2 DESC").fetchall()
    print(", ".join(f"{rule} {n}" for rule, n in rows) or "none")
PY
); webhook deliveries: $(wc -l <"$LOGS/webhook.jsonl" 2>/dev/null || echo 0)"
echo "demo: the five first alerts (API with the viewer key; deliveries in $LOGS/webhook.jsonl):"
"$BIN/python" -m simulators.demo status "${FIRST[@]}" || true
