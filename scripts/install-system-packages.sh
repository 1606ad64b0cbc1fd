#!/bin/sh
# System packages the test suite needs: Debian's Chromium for the dashboard's browser test.
# Installed with apt-get when we are root on a Debian-like machine; otherwise say what to do.
set -eu
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard browser test (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "note: Chromium is missing; the dashboard browser test needs it: sudo apt-get install chromium" >&2
fi
