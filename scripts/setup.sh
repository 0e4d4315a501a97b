#!/usr/bin/env bash
# One-shot set-up of a fresh machine: system packages, a virtual environment in .venv,
# and sitewatch with its dev and train extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: ffmpeg/ffprobe (clips, test streams), chromium + a CJK font (review UI tests),
# gstreamer's RTSP server (capture tests).
APT_PACKAGES=(ffmpeg chromium chromium-driver fonts-wqy-microhei gstreamer1.0-rtsp gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 python3-gi)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev,train]'
echo "sitewatch set up in .venv"
