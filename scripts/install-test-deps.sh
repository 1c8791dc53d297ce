#!/usr/bin/env bash
# Install what the test suite needs on a Debian machine: the shells it drives, shellcheck, and the
# package itself with its test extras. Used by .ci/run and by the README's quick start.
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

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

bash scripts/fetch-test-wheels.sh
