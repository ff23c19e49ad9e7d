//! The README's first command: `kfp-operator local --once` brings up a control plane, installs the CRDs, applies
//! the example manifests and prints every resource.

// Test code: failing loudly with the reason is the point.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn local_once_applies_the_examples_and_prints_them() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--once", "--manifests"])
        .arg(root.join("examples/local"))
        .output()
        .expect("kfp-operator runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("installed 6 CRDs"), "{stdout}");
    for row in [
        "Provider          kfp-operator-system/stub",
        "Pipeline          default/stub-pipeline",
        "Pipeline          default/penguin-pipeline",
        "Experiment        default/penguin-experiment",
        "RunSchedule       default/penguin-pipeline-run-schedule-",
        "Run               default/penguin-pipeline-run-",
        "RunConfiguration  default/stub-runconfiguration",
        "RunConfiguration  base-namespace/penguin-pipeline-examples-rc",
        "RunConfiguration  dependant-namespace/penguin-pipeline-training-rc",
    ] {
        assert!(stdout.contains(row), "missing row {row:?} in:\n{stdout}");
    }
}

#[test]
fn local_names_missing_manifests() {
    let output = Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .args(["local", "--once", "--manifests", "/nonexistent/manifests"])
        .output()
        .expect("kfp-operator runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no manifests found at /nonexistent/manifests"),
        "{stderr}"
    );
}
