//! The CRDs checked in under `config/crd/`, and the chart's copies under `charts/kfp-operator/files/crds/`, are
//! exactly what the binary generates.

// Test code: failing loudly with the reason is the point.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// Asserts that the folder `relative` (from the repository root) holds exactly the generated CRD files.
fn assert_holds_the_generated_crds(relative: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let fix = format!("run `cargo run -p kfp-operator -- crds --out-dir {relative}` and commit the result");
    let rendered = kfp_operator::crds::render().expect("CRDs render");
    assert_eq!(rendered.len(), 6, "one CRD per kind");
    for (name, yaml) in &rendered {
        let on_disk = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{relative}/{name} is missing ({e}): {fix}"));
        assert!(
            on_disk == *yaml,
            "{relative}/{name} drifted from the generated CRD: {fix}"
        );
    }
    let mut checked_in: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{relative} is missing ({e}): {fix}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    checked_in.sort();
    let generated: Vec<String> = rendered.into_iter().map(|(n, _)| n).collect();
    assert_eq!(checked_in, generated, "stale files in {relative}: {fix}");
}

#[test]
fn checked_in_crds_match_the_generated_ones() {
    assert_holds_the_generated_crds("config/crd");
}

#[test]
fn the_chart_crds_match_the_generated_ones() {
    assert_holds_the_generated_crds("charts/kfp-operator/files/crds");
}
