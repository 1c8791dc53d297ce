#!/usr/bin/env bash
# The main job with no real release at hand: build a simulated read-only release that ships
# basepkg 1.0, create an overlay on it, upgrade basepkg to 2.0 inside the overlay, and show that the
# overlay's copy wins while active and the release's comes back after `deactivate`.
# No network: the wheels are built locally by scripts/make_base.py.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/overlay-venv-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; eval "$*"; }
version='python3 -c "import basepkg, sys; print(\"basepkg\", basepkg.__version__, \"from\", basepkg.__file__)"'

# The overlay-venv the README's quick start installed into the checkout's .venv, else the one on PATH.
# Called by its own path, not through PATH: a version-manager shim (pyenv) would put its own Python
# first on PATH and hide the release's python3 from overlay-venv.
ov=$here/../.venv/bin/overlay-venv
if [ ! -x "$ov" ]; then
    ov=$(command -v overlay-venv) || {
        echo "demo: overlay-venv is not installed; run: python3 -m venv .venv && .venv/bin/pip install ." >&2
        exit 1
    }
    case $ov in
        */shims/*) ov=$(pyenv which overlay-venv) ;;
    esac
fi
overlay-venv() { "$ov" "$@"; }

python3 "$here/make_base.py" "$work/demo" >/dev/null
echo "A simulated release is in $work/demo/release (basepkg 1.0 on PYTHONPATH)."

show '. demo/release/setup.sh'
show "$version"
show 'overlay-venv create myenv'
show '. myenv/bin/activate'
show 'pip install --quiet --no-index --find-links demo/wheels basepkg==2.0'
show "$version"
show 'deactivate'
show "$version"
show 'myenv/bin/python -c "import basepkg; print(\"unactivated myenv/bin/python imports basepkg\", basepkg.__version__)"'
printf '\nThe overlay shadowed the release while active, and deactivate restored it exactly.\n'
