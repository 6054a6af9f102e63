#!/usr/bin/env bash
# System packages the tests need (Debian): git and headless Chromium for the e2e UI tests.
# Idempotent; skips what is already there. Needs root (CI runs as root) or sudo.
set -euo pipefail
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "system deps: git $(git --version | cut -d' ' -f3), $(chromium --version 2>/dev/null || echo 'chromium missing')"
