#!/usr/bin/env bash
# Installs what fpscope needs from Debian's packages, and nothing that is already there.
# Idempotent: a second run does no apt work. Needs root (or sudo) only when something is missing.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git
  libimgui-dev libstb-dev libglfw3-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libzstd-dev libsqlite3-dev sqlite3
  xvfb xauth libgl1-mesa-dri
  chromium cmark-gfm  # tests/report_browser: the HTML report in a browser, the Markdown as GFM
  python3-torch python3-numpy libopenblas-dev
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all ${#PKGS[@]} packages present"
  exit 0
fi
echo "[deps] installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "[deps] done"
