#!/usr/bin/env bash
# need.sh COMMAND:PACKAGE... makes sure each COMMAND (a name on PATH or an
# absolute path) is there, installing the Debian PACKAGE that provides it
# when it is not. It installs only as root with apt-get (as on the project's
# machines and CI); anywhere else it says exactly what to install and fails.
#   scripts/need.sh xmllint:libxml2-utils /usr/bin/chromium:chromium
set -euo pipefail
missing_cmds=() missing_pkgs=()
have() { if [[ $1 == /* ]]; then [ -x "$1" ]; else command -v "$1" >/dev/null 2>&1; fi; }
for spec in "$@"; do
  cmd=${spec%%:*} pkg=${spec#*:}
  if ! have "$cmd"; then
    missing_cmds+=("$cmd") missing_pkgs+=("$pkg")
  fi
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "need: installing ${missing_pkgs[*]} (for ${missing_cmds[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
  for cmd in "${missing_cmds[@]}"; do
    have "$cmd" || { echo "need: $cmd is still missing after installing ${missing_pkgs[*]}" >&2; exit 1; }
  done
  exit 0
fi
{
  echo "need: missing ${missing_cmds[*]}."
  echo "  On Debian or Ubuntu, as root:  apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
  echo "  (run as root with apt-get, this script installs them itself)."
} >&2
exit 1
