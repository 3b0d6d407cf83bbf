#!/usr/bin/env bash
# Installs the Debian packages the live tests (tests/live/) run against, where missing:
#   - a real RTSP server to read from: GStreamer's rtsp-server, driven by the system python3 with gi
#   - ffmpeg / ffprobe: the receiving end of the RTSP output test, and a reader of what it received
#   - prometheus: a real server scraping the pipeline's /metrics
#   - chromium: a headless browser loading the web preview
# Idempotent: when everything is present it returns at once, without touching apt.
# When the packages cannot be installed (not root, no registry), it says so and exits 0:
# the live tests then skip with the reason.
set -u

PACKAGES=(
  python3-gi
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  ffmpeg
  prometheus
  chromium
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_test_deps: all live-test packages present"
  exit 0
fi

echo "install_test_deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_test_deps: no apt-get on this machine; the live tests that need ${missing[*]} will skip"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_test_deps: not root, cannot apt-get install ${missing[*]}; the live tests that need them will skip"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
  echo "install_test_deps: the package registry is unreachable; the live tests that need ${missing[*]} will skip"
  exit 0
fi
# The prometheus package would start a system service; nothing here wants one running.
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "install_test_deps: apt-get install failed; the live tests that need ${missing[*]} will skip"
fi
if [ "$policy_added" -eq 1 ]; then
  rm -f /usr/sbin/policy-rc.d
fi
exit 0
