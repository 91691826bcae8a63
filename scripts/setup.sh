#!/usr/bin/env bash
# Installs, with apt-get, whatever the build needs that this Debian 12 machine lacks.
# Usage: scripts/setup.sh [extra-package...]
set -euo pipefail

packages=(g++ cmake ninja-build ccache libboost1.81-dev libboost-test1.81-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
