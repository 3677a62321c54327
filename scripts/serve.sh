#!/usr/bin/env bash
# The README's first command on a fresh Debian 12 machine: installs the system libraries the build links
# (zlib, OpenSSL, TurboJPEG and libwebp headers) when they are missing, then builds and runs `loupe serve` with the
# bundled Fashion-MNIST model on port 8080. Arguments go to `loupe serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt-ensure.sh
apt_ensure zlib1g-dev libssl-dev libturbojpeg0-dev libwebp-dev
exec swift run -c release loupe serve "$@"
