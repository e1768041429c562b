#!/bin/sh
# Installs the headless browser the console's end-to-end tests drive
# (internal/console, chromedp): Debian's chromium and chromium-driver.
# Does nothing when both are present. Needs root (or sudo) for apt-get.
set -eu

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
if [ -z "$missing" ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install-browser: chromium still missing" >&2; exit 1; }
echo "install-browser: $(chromium --version 2>/dev/null || echo chromium installed)" >&2
