//! The CRDs checked in under `config/crd/` are exactly what the binary generates.

// Test code: failing loudly with the reason is the point.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn checked_in_crds_match_the_generated_ones() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/crd");
    let fix = "run `cargo run -p kfp-operator -- crds --out-dir config/crd` and commit the result";
    let rendered = kfp_operator::crds::render().expect("CRDs render");
    assert_eq!(rendered.len(), 6, "one CRD per kind");
    for (name, yaml) in &rendered {
        let on_disk = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("config/crd/{name} is missing ({e}): {fix}"));
        assert!(
            on_disk == *yaml,
            "config/crd/{name} drifted from the generated CRD: {fix}"
        );
    }
    let mut checked_in: Vec<String> = std::fs::read_dir(&dir)
        .expect("config/crd exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    checked_in.sort();
    let generated: Vec<String> = rendered.into_iter().map(|(n, _)| n).collect();
    assert_eq!(checked_in, generated, "stale files in config/crd: {fix}");
}
