//! Version hashing, byte-exact with the Go operator (SPEC 1.6), so existing `status.version` values stay valid.

use crate::resources::v1beta1::{ExperimentSpec, PipelineSpec, RunScheduleSpec, RunSpec};

/// `<tag>-<hex6>` when the image is a docker reference (untagged: `latest`), else `<hex6>`.
pub fn pipeline_version(spec: &PipelineSpec) -> String {
    let _ = spec;
    String::new()
}

pub fn experiment_version(spec: &ExperimentSpec) -> String {
    let _ = spec;
    String::new()
}

pub fn run_schedule_version(spec: &RunScheduleSpec) -> String {
    let _ = spec;
    String::new()
}

/// The version of a RunConfiguration's `spec.run` (its `triggers.runSpec.version`).
pub fn run_spec_version(spec: &RunSpec) -> String {
    let _ = spec;
    String::new()
}

/// A Run's version: its RunSpec stream plus the observed pipeline version (`status.dependencies.pipeline.version`).
pub fn run_version(spec: &RunSpec, observed_pipeline_version: &str) -> String {
    let _ = (spec, observed_pipeline_version);
    String::new()
}
