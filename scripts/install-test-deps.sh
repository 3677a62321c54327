#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine, and nothing when it is all
# there already (each step checks first, so a second run takes well under a second).
# Called by scripts/test.sh; usable on its own: bash scripts/install-test-deps.sh
# Apt packages: the Fashion-MNIST IDX files, zlib/OpenSSL/TurboJPEG/libwebp headers, promtool and the Prometheus
# server, curl, Debian's protoc (scripts/gen-onnx-proto.sh), cjpeg/jpegtran (the JPEG test images), cwebp/dwebp
# (the WebP test images), chromium +
# chromium-driver (the console's browser tests, with Python selenium). Python packages: .ci/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(dataset-fashion-mnist zlib1g-dev libssl-dev libturbojpeg0-dev libwebp-dev libjpeg-turbo-progs webp openssl prometheus curl protobuf-compiler
              chromium chromium-driver)
. scripts/apt-ensure.sh
apt_ensure "${apt_packages[@]}"

# pip's own check is slow (~2 s); ask Python whether every requirement is satisfied first.
if ! python3 - .ci/requirements.txt 2>/dev/null <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
import re
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name = re.split(r"[\[<>=!~ ;]", line, 1)[0]
    try:
        version(name)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
    echo "install-test-deps: pip install -r .ci/requirements.txt"
    python3 -m pip install -q --disable-pip-version-check -r .ci/requirements.txt
fi
