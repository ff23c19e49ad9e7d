//! Version hashing, byte-exact with the Go operator (SPEC 1.6), so existing `status.version` values stay valid.
//!
//! Every version is the hex of the first 3 bytes of a SHA-1 over a byte stream built as the Go operator's
//! `ObjectHasher` builds it (`apis/pipelines/object_hasher.go` and the `ComputeHash`/`ComputeVersion`/`WriteRunSpec`
//! functions of its hub types):
//! - a string field is its bytes and a `0x00` separator;
//! - a key/value list is sorted by key then value, each entry written as two string fields, then a separator;
//! - a JSON map is sorted by key, each key a string field, each non-null value its canonical JSON (module `go_json`) as a
//!   string field, with no trailing separator.
//!
//! `provider` is never hashed. Vectors in the tests come from a port of the Go code (`tests/version_vectors`).

mod go_json;
mod image;

use std::cmp::Ordering;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha1::{Digest, Sha1};

pub use go_json::canonical_json;

use crate::resources::v1beta1::{ExperimentSpec, Parameter, PipelineSpec, RunScheduleSpec, RunSpec};
use crate::values::{JsonMap, NamedValue, OutputArtifact};

/// `<tag>-<hex6>` when the image is a docker reference (untagged: `latest`), else `<hex6>`.
pub fn pipeline_version(spec: &PipelineSpec) -> String {
    let mut h = ObjectHasher::new();
    h.string(&spec.image);
    h.named_values(&spec.env);
    h.string(&spec.framework.name);
    h.json_map(&spec.framework.parameters);
    let digest = h.0.finalize();
    let hash = digest.get(..3).unwrap_or_default();
    match image::tag(&spec.image) {
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
pub fn experiment_version(spec: &ExperimentSpec) -> String {
    let mut h = ObjectHasher::new();
    h.string(&spec.description);
    h.hex6()
}

/// The version of a RunSchedule spec, as the Go operator computes it.
pub fn run_schedule_version(spec: &RunScheduleSpec) -> String {
    let mut h = ObjectHasher::new();
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
    h.hex6()
}

/// The version of a RunConfiguration's `spec.run` (its `triggers.runSpec.version`).
pub fn run_spec_version(spec: &RunSpec) -> String {
    let mut h = ObjectHasher::new();
    h.run_spec(spec);
    h.hex6()
}

/// A Run's version: its RunSpec stream plus the observed pipeline version (`status.dependencies.pipeline.version`).
pub fn run_version(spec: &RunSpec, observed_pipeline_version: &str) -> String {
    let mut h = ObjectHasher::new();
    h.run_spec(spec);
    h.string(observed_pipeline_version);
    h.hex6()
}

/// The Go operator's `ObjectHasher`, streaming into SHA-1.
struct ObjectHasher(Sha1);

impl go_json::Sink for ObjectHasher {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

const SEPARATOR: &[u8] = &[0];

impl ObjectHasher {
    fn new() -> Self {
        Self(Sha1::new())
    }

    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
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

    /// `WriteStringField(t.String())` of a `metav1.Time`.
    fn time(&mut self, time: &Time) {
        // Writing into the hasher cannot fail.
        let _ = write_go_time(&mut FmtSink(self), time);
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
                self.string(if r.optional { "true" } else { "false" });
            }
        }
        self.put(SEPARATOR);
        self.output_artifacts(&spec.artifacts);
    }

    fn hex6(self) -> String {
        let digest = self.0.finalize();
        let mut version = String::with_capacity(6);
        push_hex(&mut version, digest.get(..3).unwrap_or_default());
        version
    }
}

/// Go's `time.Time.String()` (`2006-01-02 15:04:05.999999999 -0700 MST`) in the UTC location: what a `metav1.Time`
/// holds after unmarshalling (`.Local()`) in the operator's container, which has no `TZ` and no zoneinfo.
fn write_go_time(w: &mut impl std::fmt::Write, time: &Time) -> std::fmt::Result {
    let mut seconds = time.0.as_second();
    let mut nanos = time.0.subsec_nanosecond();
    if nanos < 0 {
        seconds -= 1;
        nanos += 1_000_000_000;
    }
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // Go's "2006" pads to 4 digits after the sign.
    if year < 0 {
        write!(w, "-{:04}", -year)?;
    } else {
        write!(w, "{year:04}")?;
    }
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    write!(w, "-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")?;
    if nanos > 0 {
        // ".999999999": nine digits with trailing zeros trimmed.
        let mut digits = 9;
        let mut fraction = nanos;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        write!(w, ".{fraction:0digits$}")?;
    }
    w.write_str(" +0000 UTC")
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

/// Proleptic Gregorian (year, month, day) of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or_default(),
        u32::try_from(day).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
