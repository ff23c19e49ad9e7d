//! Holds kfp-core's version hashing to the Go operator's own output, for both algorithms kfp-core computes.
//!
//! Each line of `fixtures/go-hash-vectors/{v0.7.0,head}.jsonl` is a v1beta1 manifest and the version the Go
//! operator's `ComputeVersion` gave it (see the README there). Every line is checked and every mismatch reported at
//! once; a `goError` line (Go panicked) only has to hash without panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};

use kfp_core::resources::v1beta1::{Experiment, Pipeline, Run, RunConfiguration, RunSchedule};
use kfp_core::version::{self, HashAlgorithm};
use serde_json::Value;

const V0_7_0: &str = include_str!("../fixtures/go-hash-vectors/v0.7.0.jsonl");
const HEAD: &str = include_str!("../fixtures/go-hash-vectors/head.jsonl");

/// The version kfp-core computes for a manifest of `kind`, as the vectors define it.
fn version_of(kind: &str, manifest: Value, algorithm: HashAlgorithm) -> Result<String, String> {
    let parse_err = |e: serde_json::Error| format!("does not deserialize: {e}");
    Ok(match kind {
        "Pipeline" => {
            let p: Pipeline = serde_json::from_value(manifest).map_err(parse_err)?;
            version::pipeline_version(&p.spec, algorithm)
        }
        "Experiment" => {
            let e: Experiment = serde_json::from_value(manifest).map_err(parse_err)?;
            version::experiment_version(&e.spec, algorithm)
        }
        "RunSchedule" => {
            let rs: RunSchedule = serde_json::from_value(manifest).map_err(parse_err)?;
            version::run_schedule_version(&rs.spec, algorithm)
        }
        "Run" => {
            let r: Run = serde_json::from_value(manifest).map_err(parse_err)?;
            let observed = r
                .status
                .as_ref()
                .map(|s| s.dependencies.pipeline.version.as_str())
                .unwrap_or_default();
            version::run_version(&r.spec, observed, algorithm)
        }
        "RunConfiguration" => {
            let rc: RunConfiguration = serde_json::from_value(manifest).map_err(parse_err)?;
            version::run_spec_version(&rc.spec.run, algorithm)
        }
        other => return Err(format!("unknown kind {other}")),
    })
}

/// Checks every line of one file; returns (matched, failures).
fn check(file: &str, text: &str, algorithm: HashAlgorithm) -> (usize, Vec<String>) {
    let mut matched = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = format!("{file}:{}", n + 1);
        let vector: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{at}: not JSON: {e}"));
                continue;
            }
        };
        let kind = vector["kind"].as_str().unwrap_or_default().to_string();
        let manifest = vector["manifest"].clone();
        let result = catch_unwind(AssertUnwindSafe(|| version_of(&kind, manifest, algorithm)));
        match (result, vector.get("version").and_then(Value::as_str)) {
            (Err(_), _) => failures.push(format!("{at}: {kind}: panicked")),
            (Ok(Err(e)), _) => failures.push(format!("{at}: {kind}: {e}")),
            // Go panicked on this input: any version will do.
            (Ok(Ok(_)), None) if vector.get("goError").is_some() => matched += 1,
            (Ok(Ok(actual)), Some(expected)) if actual == expected => matched += 1,
            (Ok(Ok(actual)), expected) => failures.push(format!(
                "{at}: {kind}: expected {expected:?}, computed {actual:?}"
            )),
        }
    }
    (matched, failures)
}

#[test]
fn every_go_vector_matches_its_algorithm() {
    let mut failures = Vec::new();
    for (file, text, algorithm) in [
        ("v0.7.0.jsonl", V0_7_0, HashAlgorithm::V0_7_0),
        ("head.jsonl", HEAD, HashAlgorithm::Head),
    ] {
        let (matched, mut failed) = check(file, text, algorithm);
        eprintln!("{file}: {matched} vectors matched, {} failed", failed.len());
        assert!(matched + failed.len() > 900, "{file}: too few vectors read");
        failures.append(&mut failed);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
