#!/usr/bin/env bash
# Installs the browser the UI tests (tests/ui, marker `ui`) drive through Playwright: Debian's
# chromium and chromium-driver. Idempotent: does nothing when /usr/bin/chromium already exists.
# Playwright's own browser download (`playwright install`) is not used.
# Needs root (CI runs as root on a fresh Debian machine); uses sudo when run as another user.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") already installed"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: $CHROMIUM is missing and apt-get is not available;" \
        "install Chromium yourself (or set GRAPHCERT_CHROMIUM to its binary)" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-browser: run as root (or install sudo) to apt-get install chromium" >&2
        exit 1
    fi
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# With recommends, as tested: they include fonts-liberation, the fonts the UI screenshots use.
$SUDO apt-get install -y -q chromium chromium-driver

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser: apt-get finished but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
