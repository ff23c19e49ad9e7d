//! Generated files are checked in exactly as the binary generates them: the CRDs under `config/crd/`, the chart's
//! copies under `charts/kfp-operator/files/crds/`, and the resource reference under `docs/reference/`.

// Test code: failing loudly with the reason is the point.

use std::path::PathBuf;

/// Compares `rendered` `(file name, content)` pairs with the files of `extension` in `folder` (relative to the
/// repository root): same names, same bytes.
fn assert_checked_in(folder: &str, extension: &str, rendered: &[(String, String)], fix: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(folder);
    for (name, content) in rendered {
        let on_disk = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{folder}/{name} is missing ({e}): {fix}"));
        assert!(
            on_disk == *content,
            "{folder}/{name} drifted from the generated file: {fix}"
        );
    }
    let mut checked_in: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{folder} cannot be read ({e}): {fix}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(extension))
        .collect();
    checked_in.sort();
    let generated: Vec<&str> = rendered.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(checked_in, generated, "stale files in {folder}: {fix}");
}

fn assert_holds_the_generated_crds(folder: &str) {
    let rendered = kfp_operator::crds::render().expect("CRDs render");
    assert_eq!(rendered.len(), 6, "one CRD per kind");
    assert_checked_in(
        folder,
        ".yaml",
        &rendered,
        &format!("run `cargo run -p kfp-operator -- crds --out-dir {folder}` and commit the result"),
    );
}

#[test]
fn checked_in_crds_match_the_generated_ones() {
    assert_holds_the_generated_crds("config/crd");
}

#[test]
fn the_chart_crds_match_the_generated_ones() {
    assert_holds_the_generated_crds("charts/kfp-operator/files/crds");
}

#[test]
fn checked_in_resource_reference_matches_the_crds() {
    let rendered = kfp_operator::reference::render().expect("the reference renders");
    assert_eq!(rendered.len(), 7, "an index and one page per kind");
    assert_checked_in(
        "docs/reference",
        ".md",
        &rendered,
        &format!(
            "run `{}` and commit the result",
            kfp_operator::reference::REGENERATE
        ),
    );
}
