#!/usr/bin/env bash
# The whole test suite. Gets the test control-plane binaries (scripts/test-assets.sh) and helm (scripts/helm.sh)
# first, both built once from Go modules and then cached, points the integration tests at them, and runs cargo
# test for the workspace.
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p kfp-testenv -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

assets="$(bash scripts/test-assets.sh | tail -n 1)"
export KUBEBUILDER_ASSETS="$assets"
echo "test.sh: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
# The chart tests (crates/kfp-operator/tests/chart*.rs) run this helm.
HELM="$(bash scripts/helm.sh | tail -n 1)"
export HELM
echo "test.sh: HELM=$HELM" >&2

if [[ $# -gt 0 ]]; then
    exec cargo test "$@"
fi
# Doctests first: cargo closes merged doctests with a timing line, and the run should end with `test result:`.
cargo test --workspace --doc
exec cargo test --workspace --lib --bins --tests --examples
