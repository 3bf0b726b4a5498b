#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing and this user may (root,
# apt-get present). Anything else is not an error: the browser test then skips, saying why.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed and cannot be installed here (needs root and apt-get): the browser test will skip"
  exit 0
fi
echo "installing chromium for the browser tests ..."
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q chromium >/tmp/ghmetrics-chromium.log 2>&1; then
  apt-get update -q >>/tmp/ghmetrics-chromium.log 2>&1
  apt-get install -y -q chromium >>/tmp/ghmetrics-chromium.log 2>&1 \
    || echo "chromium could not be installed (see /tmp/ghmetrics-chromium.log): the browser test will skip"
fi
