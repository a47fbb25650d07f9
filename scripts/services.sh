#!/usr/bin/env bash
# Start the local PostgreSQL and Mosquitto if they are not running (DEVELOPERS.md).
# Safe to run any number of times; prints what it did.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
mqtt_up() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }

if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null; then
        echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1
    fi
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 50); do pg_up && break; sleep 0.2; done
    pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! mqtt_up; then
    if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
        echo "Mosquitto is not installed: apt-get install mosquitto mosquitto-clients" >&2; exit 1
    fi
    echo "starting Mosquitto"
    "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c /etc/mosquitto/mosquitto.conf
    for _ in $(seq 50); do mqtt_up && break; sleep 0.2; done
    mqtt_up || { echo "Mosquitto did not come up on 127.0.0.1:1883" >&2; exit 1; }
fi
echo "services: PostgreSQL 127.0.0.1:5432 and Mosquitto 127.0.0.1:1883 are up"
