//! Version hashing, byte-exact with the Go operator, so `status.version` values it wrote stay valid
//! (docs/decisions/0003-conversion-and-hashing.md).
//!
//! Every version is the hex of the first 3 bytes of a SHA-1 over a byte stream built as the Go operator's
//! `ObjectHasher` builds it (`apis/pipelines/object_hasher.go` and the `ComputeHash`/`ComputeVersion`/`WriteRunSpec`
//! functions of its hub types):
//! - a string field is its bytes and a `0x00` separator;
//! - a key/value list is sorted by key then value, each entry written as two string fields, then a separator;
//! - a JSON map is sorted by key, each key a string field, each non-null value its canonical JSON (module `go_json`) as a
//!   string field, with no trailing separator.
//!
//! `provider` is never hashed. Two Go algorithms exist ([`HashAlgorithm`]): release v0.7.0 and the later main
//! branch (head), which this operator writes. They differ only in `valueFrom.runConfigurationRef.optional` (hashed
//! by head only) and in the image reference parser behind a Pipeline version's tag (module `image`); [`current`]
//! accepts a stored version of either. `tests/contract/go_hash_vectors.rs` holds every function to the Go operator's own
//! output for both.

mod go_json;
mod image;
mod manifest;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

pub use go_json::canonical_json;
pub use manifest::{ManifestVersion, of_manifest};

use crate::resources::v1beta1::{ExperimentSpec, Parameter, PipelineSpec, RunScheduleSpec, RunSpec};
use crate::values::{JsonMap, NamedValue, OutputArtifact, ScheduleTime};

/// Which Go operator's algorithm computes a version. They agree on most specs; where they differ, a cluster
/// migrated from that operator holds that algorithm's versions in its statuses (see [`current`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// The Go operator's main branch after v0.7.0: what this operator writes.
    #[default]
    Head,
    /// The Go operator's release v0.7.0.
    V0_7_0,
}

impl HashAlgorithm {
    /// Every algorithm, the one this operator writes first.
    pub const ALL: [HashAlgorithm; 2] = [HashAlgorithm::Head, HashAlgorithm::V0_7_0];

    /// The name the `version` command takes: `head` or `v0.7.0`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Head => "head",
            HashAlgorithm::V0_7_0 => "v0.7.0",
        }
    }
}

impl std::fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for HashAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashAlgorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown hash algorithm {s:?}: expected head or v0.7.0"))
    }
}

/// The version to keep for a spec whose status holds `stored`: `stored` itself when one of the algorithms gives it
/// for the spec (`compute(algorithm)`), else the spec's head version. So a status written by the Go operator, at
/// v0.7.0 or later, reads as unchanged, and nothing is sent to the provider until the spec really changes.
pub fn current(stored: &str, compute: impl Fn(HashAlgorithm) -> String) -> String {
    let head = compute(HashAlgorithm::Head);
    if stored.is_empty() || stored == head {
        return head;
    }
    let older = HashAlgorithm::ALL
        .into_iter()
        .filter(|a| *a != HashAlgorithm::Head)
        .any(|a| compute(a) == stored);
    if older { stored.to_string() } else { head }
}

/// `<tag>-<hex6>` when the image is a docker reference (untagged: `latest`), else `<hex6>`.
pub fn pipeline_version(spec: &PipelineSpec, algorithm: HashAlgorithm) -> String {
    let mut h = ObjectHasher::new(algorithm);
    h.string(&spec.image);
    h.named_values(&spec.env);
    h.string(&spec.framework.name);
    h.json_map(&spec.framework.parameters);
    let digest = h.sha.finalize();
    let hash = digest.get(..3).unwrap_or_default();
    match image::tag(&spec.image, algorithm) {
        Some(tag) => {
            let mut version = String::with_capacity(tag.len() + 7);
            version.push_str(tag);
            version.push('-');
            push_hex(&mut version, hash);
            version
        }
        None => {
            let mut version = String::with_capacity(6);
            push_hex(&mut version, hash);
            version
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// The version of an Experiment spec: a hash of its description.
pub fn experiment_version(spec: &ExperimentSpec, algorithm: HashAlgorithm) -> String {
    let mut h = ObjectHasher::new(algorithm);
    h.string(&spec.description);
    h.hex6()
}

/// The version of a RunSchedule spec, as the Go operator computes it.
pub fn run_schedule_version(spec: &RunScheduleSpec, algorithm: HashAlgorithm) -> String {
    let mut h = ObjectHasher::new(algorithm);
    h.display(&spec.pipeline);
    h.string(&spec.experiment_name);
    h.named_values(&spec.parameters);
    h.output_artifacts(&spec.artifacts);
    h.string(spec.schedule.cron_expression.as_str());
    for time in [&spec.schedule.start_time, &spec.schedule.end_time]
        .into_iter()
        .flatten()
    {
        h.time(time);
    }
    h.run_options(&spec.service_account, &spec.labels);
    h.hex6()
}

/// The version of a RunConfiguration's `spec.run` (its `triggers.runSpec.version`).
pub fn run_spec_version(spec: &RunSpec, algorithm: HashAlgorithm) -> String {
    let mut h = ObjectHasher::new(algorithm);
    h.run_spec(spec);
    h.hex6()
}

/// A Run's version: its RunSpec stream plus the observed pipeline version (`status.dependencies.pipeline.version`).
pub fn run_version(spec: &RunSpec, observed_pipeline_version: &str, algorithm: HashAlgorithm) -> String {
    let mut h = ObjectHasher::new(algorithm);
    h.run_spec(spec);
    h.string(observed_pipeline_version);
    h.hex6()
}

/// The Go operator's `ObjectHasher`, streaming into SHA-1.
struct ObjectHasher {
    sha: Sha1,
    algorithm: HashAlgorithm,
}

impl go_json::Sink for ObjectHasher {
    fn put(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
    }
}

const SEPARATOR: &[u8] = &[0];

impl ObjectHasher {
    fn new(algorithm: HashAlgorithm) -> Self {
        Self {
            sha: Sha1::new(),
            algorithm,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
    }

    /// `WriteStringField`.
    fn string(&mut self, value: &str) {
        self.put(value.as_bytes());
        self.put(SEPARATOR);
    }

    /// `WriteStringField(value.String())`, formatted straight into the hasher.
    fn display(&mut self, value: &impl std::fmt::Display) {
        use std::fmt::Write as _;
        // Writing into the hasher cannot fail.
        let _ = write!(FmtSink(self), "{value}");
        self.put(SEPARATOR);
    }

    /// `WriteKVListField` over `NamedValue`s: sorted by name then value.
    fn named_values(&mut self, values: &[NamedValue]) {
        let sorted = values
            .windows(2)
            .all(|w| (&w[0].name, &w[0].value) <= (&w[1].name, &w[1].value));
        if sorted {
            values.iter().for_each(|v| self.key_value(&v.name, &v.value));
        } else {
            let mut refs: Vec<&NamedValue> = values.iter().collect();
            refs.sort_unstable_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
            refs.into_iter().for_each(|v| self.key_value(&v.name, &v.value));
        }
        self.put(SEPARATOR);
    }

    /// `WriteKVListField` over `OutputArtifact`s: the value is the path's canonical string (`Comp:art:0[filter]`).
    fn output_artifacts(&mut self, artifacts: &[OutputArtifact]) {
        let mut entries: Vec<(&str, String)> = artifacts
            .iter()
            .map(|a| (a.name.as_str(), artifact_path_string(a)))
            .collect();
        entries.sort_unstable();
        entries.iter().for_each(|(name, path)| self.key_value(name, path));
        self.put(SEPARATOR);
    }

    fn key_value(&mut self, key: &str, value: &str) {
        self.string(key);
        self.string(value);
    }

    /// `WriteJSONMapField`: keys sorted, null values skipped, no trailing separator.
    fn json_map(&mut self, map: &JsonMap) {
        // A `BTreeMap` iterates in bytewise key order, as Go's `sort.Strings`.
        for (key, value) in map {
            self.string(key);
            if !value.is_null() {
                go_json::write_value(self, value);
                self.put(SEPARATOR);
            }
        }
    }

    /// `WriteStringField(t.String())` of a `metav1.Time`, which holds the instant in UTC after unmarshalling
    /// (`.Local()` in a container without a time zone).
    fn time(&mut self, time: &ScheduleTime) {
        // Writing into the hasher cannot fail.
        let _ = time.write_go_utc(&mut FmtSink(self));
        self.put(SEPARATOR);
    }

    /// `WriteRunSpec`: pipeline, experiment name, sorted parameters, artifacts.
    fn run_spec(&mut self, spec: &RunSpec) {
        self.display(&spec.pipeline);
        self.string(&spec.experiment_name);
        let mut parameters: Vec<&Parameter> = spec.parameters.iter().collect();
        go_insertion_sort(&mut parameters, |a, b| compare_parameters(a, b) == Ordering::Less);
        for p in parameters {
            self.string(&p.name);
            self.string(&p.value);
            if let Some(value_from) = &p.value_from {
                let r = &value_from.run_configuration_ref;
                self.string(&r.name.name);
                self.string(&r.name.namespace);
                self.string(&r.output_artifact);
                // v0.7.0 does not hash `optional`.
                if self.algorithm == HashAlgorithm::Head {
                    self.string(if r.optional { "true" } else { "false" });
                }
            }
        }
        self.put(SEPARATOR);
        self.output_artifacts(&spec.artifacts);
        self.run_options(&spec.service_account, &spec.labels);
    }

    /// `serviceAccount` and `labels`, which the Go operator does not have: hashed only when set (each behind its
    /// name), so a spec without them keeps the Go operator's version.
    fn run_options(&mut self, service_account: &str, labels: &BTreeMap<String, String>) {
        if !service_account.is_empty() {
            self.string("serviceAccount");
            self.string(service_account);
        }
        if !labels.is_empty() {
            self.string("labels");
            labels.iter().for_each(|(k, v)| self.key_value(k, v));
            self.put(SEPARATOR);
        }
    }

    fn hex6(self) -> String {
        let digest = self.sha.finalize();
        let mut version = String::with_capacity(6);
        push_hex(&mut version, digest.get(..3).unwrap_or_default());
        version
    }
}

/// Adapts the hasher to `fmt::Write`, so formatted values stream into it without an intermediate string.
struct FmtSink<'a>(&'a mut ObjectHasher);

impl std::fmt::Write for FmtSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put(s.as_bytes());
        Ok(())
    }
}

/// The Go operator's `ArtifactPath.String()`: the filter part only when the filter is non-empty.
fn artifact_path_string(artifact: &OutputArtifact) -> String {
    let p = &artifact.path;
    match p.filter.as_deref() {
        Some(filter) if !filter.is_empty() => format!("{}:{}:{}[{filter}]", p.component, p.artifact, p.index),
        _ => format!("{}:{}:{}", p.component, p.artifact, p.index),
    }
}

/// The Go operator's `cmpParameters` as an ordering: name, value, no `valueFrom` first, the referenced
/// RunConfiguration's name (its namespace is not compared), output artifact, non-optional first.
///
/// Go dereferences a nil `valueFrom` (and panics) when a parameter with `valueFrom` is compared with one without
/// and the same name and value; ordering the one without first is what Go does whenever it does not panic.
fn compare_parameters(p1: &Parameter, p2: &Parameter) -> Ordering {
    p1.name
        .cmp(&p2.name)
        .then_with(|| p1.value.cmp(&p2.value))
        .then_with(|| {
            match (&p1.value_from, &p2.value_from) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => {
                    let (a, b) = (&a.run_configuration_ref, &b.run_configuration_ref);
                    if a.name != b.name {
                        // Go compares only the names here: references differing only in namespace are "equal", and
                        // their output artifacts are not compared.
                        return a.name.name.cmp(&b.name.name);
                    }
                    a.output_artifact
                        .cmp(&b.output_artifact)
                        .then_with(|| a.optional.cmp(&b.optional))
                }
            }
        })
}

/// Go's `sort.Slice` for up to 12 elements (`insertionSort_func`), step for step: `cmpParameters` is not a strict
/// weak ordering (references differing only in namespace), so the result depends on the algorithm, and a library
/// sort could order differently (or, in Rust, panic). Go switches to pdqsort above 12 elements; this keeps insertion
/// sort there, which differs from Go only for such namespace-only ties among more than 12 parameters.
fn go_insertion_sort<T>(items: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(&items[j], &items[j - 1]) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests;
