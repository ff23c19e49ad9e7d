//! Version hashing, byte-exact with the Go operator (SPEC 1.6), so existing `status.version` values stay valid.

use crate::resources::v1beta1::{ExperimentSpec, PipelineSpec, RunScheduleSpec, RunSpec};

// TEMPORARY until the byte-exact implementation lands: a non-empty, spec-dependent placeholder.
fn placeholder(value: &impl std::fmt::Debug) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    format!("{value:?}").hash(&mut h);
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// `<tag>-<hex6>` when the image is a docker reference (untagged: `latest`), else `<hex6>`.
pub fn pipeline_version(spec: &PipelineSpec) -> String {
    placeholder(spec)
}

pub fn experiment_version(spec: &ExperimentSpec) -> String {
    placeholder(spec)
}

pub fn run_schedule_version(spec: &RunScheduleSpec) -> String {
    placeholder(spec)
}

/// The version of a RunConfiguration's `spec.run` (its `triggers.runSpec.version`).
pub fn run_spec_version(spec: &RunSpec) -> String {
    placeholder(spec)
}

/// A Run's version: its RunSpec stream plus the observed pipeline version (`status.dependencies.pipeline.version`).
pub fn run_version(spec: &RunSpec, observed_pipeline_version: &str) -> String {
    placeholder(&(spec, observed_pipeline_version))
}
