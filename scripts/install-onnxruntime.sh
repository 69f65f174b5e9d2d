#!/usr/bin/env bash
# Install the ONNX Runtime shared library the kiosk loads at run time (ort `load-dynamic`).
#
# Takes `onnxruntime/capi/libonnxruntime.so.<VERSION>` out of the official PyPI wheel
# `onnxruntime==<VERSION>` and puts it at `<repo>/.cache/onnxruntime/libonnxruntime.so.<VERSION>`
# (the `.cache` folder is git-ignored). Idempotent: does nothing when the file is already there.
#
# Usage: scripts/install-onnxruntime.sh            (needs python3 + pip, and unzip or python3)
#        ORT_VERSION=1.31.1 scripts/install-onnxruntime.sh
set -euo pipefail

VERSION="${ORT_VERSION:-1.31.1}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="$REPO/.cache/onnxruntime"
LIB="libonnxruntime.so.$VERSION"
DEST="$DEST_DIR/$LIB"

if [[ -s "$DEST" ]]; then
    echo "ONNX Runtime $VERSION already installed: $DEST"
    exit 0
fi

mkdir -p "$DEST_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

PIP=(python3 -m pip)
if ! "${PIP[@]}" --version >/dev/null 2>&1; then
    if command -v pip3 >/dev/null; then PIP=(pip3); elif command -v pip >/dev/null; then PIP=(pip); else
        echo "error: need pip (python3 -m pip) to download the onnxruntime wheel" >&2
        exit 1
    fi
fi

echo "Downloading onnxruntime==$VERSION wheel from PyPI ..."
"${PIP[@]}" download --quiet --no-deps --only-binary=:all: "onnxruntime==$VERSION" -d "$TMP"
WHEEL="$(ls "$TMP"/onnxruntime-"$VERSION"-*.whl | head -n1)"

python3 - "$WHEEL" "onnxruntime/capi/$LIB" "$TMP/$LIB" <<'PY'
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

chmod 0644 "$TMP/$LIB"
mv "$TMP/$LIB" "$DEST"
echo "Installed $DEST"
