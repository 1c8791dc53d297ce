#!/usr/bin/env bash
# Fetch the real wheels some tests install into overlays (setuptools and hatchling for editable
# installs, ipykernel and friends for kernels, ...) once, so the test run itself needs no network.
#
# Each scripts/test-wheels/*.txt is a requirements file. Wheels are downloaded with every base
# interpreter the tests build releases on (3.9 and the newest), so compiled wheels match each base,
# into one flat wheelhouse: $OVERLAY_VENV_TEST_WHEELS, by default .test-wheels/ in the checkout.
# Tests install from it with --no-index --find-links.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${OVERLAY_VENV_TEST_WHEELS:-$PWD/.test-wheels}
mkdir -p "$dest"
reqs=(scripts/test-wheels/*.txt)
[ -e "${reqs[0]}" ] || exit 0
pythons=$(python3 scripts/make_base.py --print-test-pythons)
for python in $pythons; do
    for req in "${reqs[@]}"; do
        "$python" -m pip download -q --disable-pip-version-check --only-binary=:all: -d "$dest" -r "$req"
    done
done
