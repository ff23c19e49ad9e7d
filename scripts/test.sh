#!/usr/bin/env bash
# The whole test suite. Gets the test control-plane binaries (scripts/test-assets.sh) and helm (scripts/helm.sh),
# both built once from Go modules and then cached, and the compilers' Python environment (scripts/python-env.sh),
# points the integration tests at them, and runs cargo test for the workspace.
# Extra arguments go to cargo test, e.g. `scripts/test.sh -p kfp-testenv -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

assets="$(bash scripts/test-assets.sh | tail -n 1)"
export KUBEBUILDER_ASSETS="$assets"
echo "test.sh: KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
# The compilers' Python environment (kfp, pytest): the compiler tests and the kfpsdk local example run in it.
KFP_OPERATOR_VENV="$(bash scripts/python-env.sh | tail -n 1)"
export KFP_OPERATOR_VENV
echo "test.sh: KFP_OPERATOR_VENV=$KFP_OPERATOR_VENV" >&2
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
