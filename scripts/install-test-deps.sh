#!/usr/bin/env bash
# Install what the test suite needs on a Debian machine: the shells it drives, shellcheck, Slurm, and
# the package itself with its test extras in the checkout's virtual environment .venv, which the
# README's test command then runs: `.venv/bin/python -m pytest`. Used by .ci/run and the quick start.
set -euo pipefail
cd "$(dirname "$0")/.."

# The shells the activation tests drive, shellcheck, and Slurm for the batch tests (on localhost).
SHELLS_PKGS=(bash dash zsh ksh tcsh csh fish shellcheck slurmctld slurmd slurm-client)
missing=()
for pkg in "${SHELLS_PKGS[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for exe in bash dash zsh ksh tcsh csh fish shellcheck slurmctld slurmd sbatch; do
    command -v "$exe" >/dev/null || { echo "install-test-deps: $exe is still missing" >&2; exit 1; }
done

# A virtual environment, not python3 itself: a distribution's python3 refuses pip installs (PEP 668,
# "externally-managed-environment"), and a venv works the same on pyenv or LCG Pythons. The README's
# first command made .venv already; made here if not (Debian needs python3-venv for that).
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

bash scripts/fetch-test-wheels.sh
