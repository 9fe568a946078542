#!/usr/bin/env bash
# Installs what the distributed suite (tests/distributed, marker `distributed`) runs Airflow on:
# Debian's PostgreSQL (metadata database) and Redis (Celery broker). Idempotent: installs only
# what is missing. Needs root (CI runs as root on a fresh Debian machine); uses sudo otherwise.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-distributed: PostgreSQL and Redis already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-distributed: ${missing[*]} missing and apt-get is not available; install them yourself" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-distributed: run as root (or install sudo) to apt-get install ${missing[*]}" >&2
        exit 1
    fi
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# --no-install-recommends: the suite starts its own servers on loopback; no services are enabled.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-distributed: installed ${missing[*]}"
