//! Value types whose string encodings are API (their patterns: docs/reference/).
//!
//! Each type parses from and serialises to the exact string form the Go operator uses, so existing manifests and
//! stored objects keep working. Parsing never panics; a failure is a [`ValueError`] naming the value and the rule.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod schedule_time;

pub use schedule_time::ScheduleTime;

/// A value that does not have the shape its field requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Not `name`, `namespace/name` or empty.
    #[error("invalid namespaced name {value:?}: {reason}")]
    NamespacedName {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not `NAME` or `NAME:VERSION`.
    #[error(
        "invalid pipeline identifier {value:?}: expected NAME or NAME:VERSION of word characters and '-'"
    )]
    PipelineIdentifier {
        /// The value as written.
        value: String,
    },
    /// Not `COMPONENT:ARTIFACT[:INDEX][[FILTER]]`.
    #[error("invalid artifact path {value:?}: expected COMPONENT:ARTIFACT[:INDEX][[FILTER]]")]
    ArtifactPath {
        /// The value as written.
        value: String,
    },
    /// Not an RFC 3339 time.
    #[error("invalid time {value:?}: {reason}")]
    Time {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not a cron expression of 5 or 6 fields.
    #[error("invalid cron expression {value:?}: {reason}")]
    Cron {
        /// The value as written.
        value: String,
        /// The parser's message.
        reason: String,
    },
}

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`, so the Rust type is the string on the wire.
macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------------------------
// NamespacedName
// ---------------------------------------------------------------------------------------------------------------

/// `"ns/name"`, `"name"` (no namespace) or `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespacedName {
    /// The namespace; empty when the string had none.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl NamespacedName {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// True for the empty name (`""`: not set).
    pub fn is_empty(&self) -> bool {
        self.namespace.is_empty() && self.name.is_empty()
    }

    /// The namespace, or `default` when none was written: references without a namespace point into the
    /// referring object's own namespace.
    pub fn with_default_namespace(&self, default: &str) -> Self {
        if self.namespace.is_empty() {
            Self::new(default, self.name.clone())
        } else {
            self.clone()
        }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

impl FromStr for NamespacedName {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ValueError::NamespacedName {
            value: s.to_string(),
            reason,
        };
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, None) => Ok(Self::new("", name)),
            (Some(ns), Some(name), None) => {
                if ns.is_empty() || name.is_empty() {
                    Err(err("both sides of '/' must be non-empty"))
                } else {
                    Ok(Self::new(ns, name))
                }
            }
            _ => Err(err("at most one '/' is allowed")),
        }
    }
}

string_serde!(NamespacedName);

impl JsonSchema for NamespacedName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NamespacedName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": NAMESPACED_NAME_PATTERN })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// `""`, `"name"` or `"namespace/name"`: at most one `/`, with both sides non-empty.
pub const NAMESPACED_NAME_PATTERN: &str = "^([^/]+(/[^/]+)?)?$";

/// The pattern of every `provider` field: the namespace is mandatory.
pub const PROVIDER_REFERENCE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Schema for `provider` fields (a [`NamespacedName`] with a mandatory namespace).
pub fn provider_reference_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": PROVIDER_REFERENCE_PATTERN })
}

// ---------------------------------------------------------------------------------------------------------------
// PipelineIdentifier
// ---------------------------------------------------------------------------------------------------------------

/// The CRD pattern of a [`PipelineIdentifier`].
pub const PIPELINE_IDENTIFIER_PATTERN: &str = r"^[\w\-]+(?::[\w\-_.]+)?$";

static PIPELINE_IDENTIFIER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(PIPELINE_IDENTIFIER_PATTERN).ok());

/// `NAME[:VERSION]`: a pipeline, optionally pinned to a version. Empty means "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipelineIdentifier {
    /// The Pipeline's name.
    pub name: String,
    /// Empty when floating (follow the Pipeline's current version).
    pub version: String,
}

impl PipelineIdentifier {
    /// `name:version` (`version` empty: floating).
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
        }
    }

    /// True when not set.
    pub fn is_empty(&self) -> bool {
        self.name.is_empty() && self.version.is_empty()
    }
}

impl fmt::Display for PipelineIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}:{}", self.name, self.version)
        }
    }
}

impl FromStr for PipelineIdentifier {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        let valid = PIPELINE_IDENTIFIER.as_ref().is_some_and(|re| re.is_match(s));
        if !valid {
            return Err(ValueError::PipelineIdentifier { value: s.to_string() });
        }
        Ok(match s.split_once(':') {
            Some((name, version)) => Self::new(name, version),
            None => Self::new(s, ""),
        })
    }
}

impl PipelineIdentifier {
    /// What the Go operator's `PipelineIdentifier.UnmarshalJSON` makes of any string: the name is the text before
    /// the first `:`, the version the text after it only when there is exactly one `:` (`p:v1:v2` is `p`).
    /// The CRD pattern keeps such strings out of the API server; reading them like Go keeps version hashes of
    /// manifests from elsewhere (the `version` command, the Go operator's own vectors) identical to Go's.
    pub fn from_go(s: &str) -> Self {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        match (parts.next(), parts.next()) {
            (Some(version), None) => Self::new(name, version),
            _ => Self::new(name, ""),
        }
    }
}

impl Serialize for PipelineIdentifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PipelineIdentifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        // Strict when valid; anything else as Go reads it, never an error (see `from_go`).
        Ok(raw.parse().unwrap_or_else(|_| Self::from_go(&raw)))
    }
}

impl JsonSchema for PipelineIdentifier {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PipelineIdentifier".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": PIPELINE_IDENTIFIER_PATTERN })
    }

    fn inline_schema() -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------------------------
// ArtifactPath
// ---------------------------------------------------------------------------------------------------------------

/// The CRD pattern of an [`ArtifactPath`].
pub const ARTIFACT_PATH_PATTERN: &str = r"^([^\[\]:]+):([^\[\]:]+)(?::(\d*))?(?:\[([^\[\]:]+)\])?$";

static ARTIFACT_PATH: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(ARTIFACT_PATH_PATTERN).ok());

/// `COMPONENT:ARTIFACT[:INDEX][[FILTER]]`: where in a finished run's outputs an artifact is found.
///
/// The canonical string always includes the index (`Comp:art:0[filter]`), as the Go operator writes it; version
/// hashes are computed over that canonical form.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArtifactPath {
    /// The component's name.
    pub component: String,
    /// The output artifact's name.
    pub artifact: String,
    /// Which instance of the output (default 0).
    pub index: usize,
    /// A boolean expression over the artifact's metadata (see `artifact::filter`), e.g. `pushed == 1`.
    pub filter: Option<String>,
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.component, self.artifact, self.index)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        Ok(())
    }
}

impl FromStr for ArtifactPath {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::ArtifactPath { value: s.to_string() };
        let caps = ARTIFACT_PATH
            .as_ref()
            .and_then(|re| re.captures(s))
            .ok_or_else(err)?;
        let group = |i| caps.get(i).map(|m| m.as_str()).unwrap_or_default();
        let index = match group(3) {
            "" => 0,
            digits => digits.parse().map_err(|_| err())?,
        };
        Ok(Self {
            component: group(1).to_string(),
            artifact: group(2).to_string(),
            index,
            filter: caps.get(4).map(|m| m.as_str().to_string()),
        })
    }
}

string_serde!(ArtifactPath);

impl JsonSchema for ArtifactPath {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ArtifactPath".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": ARTIFACT_PATH_PATTERN })
    }

    fn inline_schema() -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cron
// ---------------------------------------------------------------------------------------------------------------

/// A cron expression of 5 fields, or 6 with leading seconds, checked with a real cron parser.
///
/// Kept as written; [`CronExpression::six_fields`] and [`CronExpression::five_fields`] give the forms Kubeflow
/// Pipelines and Vertex AI expect.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CronExpression(String);

impl CronExpression {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn fields(&self) -> Vec<&str> {
        self.0.split_whitespace().collect()
    }

    /// Six fields with leading seconds (Kubeflow Pipelines): a 5-field expression gets `0` seconds.
    pub fn six_fields(&self) -> String {
        let fields = self.fields();
        if fields.len() == 5 {
            format!("0 {}", fields.join(" "))
        } else {
            fields.join(" ")
        }
    }

    /// Five fields (Vertex AI): a 6-field expression drops its seconds.
    pub fn five_fields(&self) -> String {
        let fields = self.fields();
        if fields.len() == 6 {
            fields[1..].join(" ")
        } else {
            fields.join(" ")
        }
    }
}

impl fmt::Display for CronExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CronExpression {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ValueError::Cron {
            value: s.to_string(),
            reason,
        };
        let count = s.split_whitespace().count();
        if !(count == 5 || count == 6) {
            return Err(err(format!(
                "expected 5 fields, or 6 with leading seconds, found {count}"
            )));
        }
        if let Some(reason) = cron_out_of_range(s) {
            return Err(err(reason));
        }
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(s)
            .map_err(|e| err(format!("{e}; the fields are: {}", cron_field_names(count))))?;
        Ok(Self(s.to_string()))
    }
}

/// The cron fields in order and the numbers each allows (day-of-week 7 is Sunday too, as in the parser).
const CRON_FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

fn cron_fields(count: usize) -> &'static [(&'static str, u32, u32)] {
    // 5 fields have no seconds; 6 fields start with them.
    if count == 6 {
        &CRON_FIELDS
    } else {
        &CRON_FIELDS[1..]
    }
}

fn cron_field_names(count: usize) -> String {
    let names: Vec<&str> = cron_fields(count).iter().map(|(name, _, _)| *name).collect();
    names.join(" ")
}

/// The first number outside its field's range, said the way a user can act on it ("minute 61 is out of range
/// 0-59"): the parser only says "Number out of bounds" (issue 19). Names and the parser's special forms (`L`, `W`,
/// `#`) are left to the parser.
fn cron_out_of_range(expression: &str) -> Option<String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    for (field, (name, min, max)) in fields.iter().zip(cron_fields(fields.len())) {
        for item in field.split(',') {
            let mut parts = item.split('/');
            let range = parts.next().unwrap_or_default();
            if let Some(Ok(step)) = parts.next().map(str::parse::<u64>)
                && !(1..=u64::from(*max)).contains(&step)
            {
                return Some(format!("{name} step {step} is out of range 1-{max}"));
            }
            let range = range.split('#').next().unwrap_or_default();
            for number in range.split('-') {
                if let Ok(n) = number.parse::<u64>()
                    && !(u64::from(*min)..=u64::from(*max)).contains(&n)
                {
                    return Some(format!("{name} {n} is out of range {min}-{max}"));
                }
            }
        }
    }
    None
}

impl CronExpression {
    /// Wraps a string without checking it: for values read back from storage, where refusing to decode would hide
    /// the object from the operator. Use [`FromStr`] for input that should be validated.
    pub fn unchecked(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// Checks the expression with the cron parser (5 or 6 fields).
    pub fn validate(&self) -> Result<(), ValueError> {
        self.0.parse::<Self>().map(|_| ())
    }
}

impl Serialize for CronExpression {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Stored cron expressions are decoded as they are: the admission webhook and [`CronExpression::validate`] check
/// them, so one bad schedule surfaces as a status message rather than an object the operator cannot read.
impl<'de> Deserialize<'de> for CronExpression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl JsonSchema for CronExpression {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CronExpression".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }

    fn inline_schema() -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Small structs
// ---------------------------------------------------------------------------------------------------------------

/// `{name, value}` (environment variables, beam arguments, RunSchedule parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct NamedValue {
    /// The name: of the environment variable, the Beam argument (without `--`) or the parameter.
    pub name: String,
    /// The value, as a string.
    pub value: String,
}

impl NamedValue {
    /// `{name, value}`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// `{name, path}`: an artifact a run exposes, found at `path` in the run's outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct OutputArtifact {
    /// The name dependants use (`valueFrom.runConfigurationRef.outputArtifact`) and events carry.
    pub name: String,
    /// `COMPONENT:ARTIFACT[:INDEX][[FILTER]]`: the component's output artifact, its instance (default 0), and
    /// optionally a boolean filter over the artifact's metadata that must hold, e.g. `Pusher:pushed_model:0[pushed
    /// == 1]`.
    pub path: ArtifactPath,
}

/// `{name, location}`: a resolved artifact of a finished run.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    /// The `spec.run.artifacts[].name` it matched.
    pub name: String,
    /// Where the artifact is (its URI, e.g. `gs://bucket/model/1`).
    pub location: String,
}

/// Arbitrary JSON values (framework and provider parameters): `map<string, JSON>`.
pub type JsonMap = BTreeMap<String, serde_json::Value>;

/// Structural schema for a map of arbitrary JSON values, as controller-gen renders `map[string]*apiextensionsv1.JSON`.
pub fn json_map_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// SynchronizationState
// ---------------------------------------------------------------------------------------------------------------

/// The state of a resource's synchronisation with its provider: the `reason` of the `Synchronized` condition.
///
/// `Unknown` stands for the empty string (nothing recorded yet). `Pending` is this project's (docs/controllers.md,
/// "Runs"): a Run or RunConfiguration whose inputs are missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SynchronizationState {
    /// Nothing recorded yet (the empty reason).
    #[default]
    Unknown,
    /// The create operation is in flight.
    Creating,
    /// The provider holds the current spec.
    Succeeded,
    /// An update (new version) is in flight.
    Updating,
    /// The delete operation is in flight.
    Deleting,
    /// The provider deleted its object; the finalizer is released.
    Deleted,
    /// The last operation failed; the condition message says why and whether it is retried.
    Failed,
    /// Nothing submitted: an input is missing.
    Pending,
}

impl SynchronizationState {
    /// Every state, `Unknown` first.
    pub const ALL: [SynchronizationState; 8] = [
        Self::Unknown,
        Self::Creating,
        Self::Succeeded,
        Self::Updating,
        Self::Deleting,
        Self::Deleted,
        Self::Failed,
        Self::Pending,
    ];

    /// The condition reason (`""` for `Unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "",
            Self::Creating => "Creating",
            Self::Succeeded => "Succeeded",
            Self::Updating => "Updating",
            Self::Deleting => "Deleting",
            Self::Deleted => "Deleted",
            Self::Failed => "Failed",
            Self::Pending => "Pending",
        }
    }

    /// Parses case-insensitively; anything unrecognised is `Unknown` (the Go operator's behaviour).
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .unwrap_or_default()
    }

    /// The `status` of the `Synchronized` condition for this state.
    pub fn condition_status(self) -> &'static str {
        match self {
            Self::Succeeded | Self::Deleted => "True",
            Self::Failed | Self::Pending => "False",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for SynchronizationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespaced_name_forms() {
        assert_eq!(
            "ns/n".parse::<NamespacedName>().unwrap(),
            NamespacedName::new("ns", "n")
        );
        assert_eq!(
            "n".parse::<NamespacedName>().unwrap(),
            NamespacedName::new("", "n")
        );
        assert_eq!("".parse::<NamespacedName>().unwrap(), NamespacedName::default());
        for bad in ["a/b/c", "/b", "a/", "/"] {
            let err = bad.parse::<NamespacedName>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(NamespacedName::new("ns", "n").to_string(), "ns/n");
        assert_eq!(NamespacedName::new("", "n").to_string(), "n");
    }

    #[test]
    fn pipeline_identifier_forms() {
        assert_eq!(
            "p".parse::<PipelineIdentifier>().unwrap(),
            PipelineIdentifier::new("p", "")
        );
        assert_eq!(
            "p:v1-abc.2".parse::<PipelineIdentifier>().unwrap(),
            PipelineIdentifier::new("p", "v1-abc.2")
        );
        assert!("p:".parse::<PipelineIdentifier>().is_err());
        // Deserialising reads any string as the Go operator does.
        for (raw, name, version) in [
            ("p:v1:v2", "p", ""),
            ("p:", "p", ""),
            ("a b:v", "a b", "v"),
            (":v", "", "v"),
        ] {
            let read: PipelineIdentifier =
                serde_json::from_value(serde_json::Value::String(raw.into())).unwrap();
            assert_eq!(read, PipelineIdentifier::new(name, version), "{raw}");
        }
        assert!("a b".parse::<PipelineIdentifier>().is_err());
        assert_eq!(PipelineIdentifier::new("p", "v").to_string(), "p:v");
    }

    #[test]
    fn artifact_path_forms_and_canonical_string() {
        let p: ArtifactPath = "Pusher:pushed_model:0[pushed == 1]".parse().unwrap();
        assert_eq!(p.component, "Pusher");
        assert_eq!(p.artifact, "pushed_model");
        assert_eq!(p.index, 0);
        assert_eq!(p.filter.as_deref(), Some("pushed == 1"));
        assert_eq!(
            "CsvExampleGen:examples"
                .parse::<ArtifactPath>()
                .unwrap()
                .to_string(),
            "CsvExampleGen:examples:0"
        );
        assert_eq!("C:a:".parse::<ArtifactPath>().unwrap().index, 0);
        assert_eq!("C:a:3".parse::<ArtifactPath>().unwrap().to_string(), "C:a:3");
        assert_eq!(
            "C:a[x > 1]".parse::<ArtifactPath>().unwrap().to_string(),
            "C:a:0[x > 1]"
        );
        for bad in [
            "C",
            "C:",
            ":a",
            "C:a:x",
            "C:a:1:2",
            "C:a[x:y]",
            "C:a:99999999999999999999999",
        ] {
            let err = bad.parse::<ArtifactPath>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn cron_accepts_five_and_six_fields_and_rejects_the_rest() {
        let five: CronExpression = "0 * * * *".parse().unwrap();
        assert_eq!(five.six_fields(), "0 0 * * * *");
        assert_eq!(five.five_fields(), "0 * * * *");
        let six: CronExpression = "30 0 * * * *".parse().unwrap();
        assert_eq!(six.five_fields(), "0 * * * *");
        assert_eq!(six.six_fields(), "30 0 * * * *");
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "61 * * * *",
            "* 25 * * *",
            "not a cron at all",
        ] {
            let err = bad.parse::<CronExpression>().unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid cron expression {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn cron_says_which_field_is_out_of_range() {
        let reason = |s: &str| match s.parse::<CronExpression>() {
            Err(ValueError::Cron { reason, .. }) => reason,
            other => panic!("{s:?} parsed: {other:?}"),
        };
        assert_eq!(reason("61 * * * *"), "minute 61 is out of range 0-59");
        assert_eq!(reason("0 24 * * *"), "hour 24 is out of range 0-23");
        assert_eq!(reason("0 0 0 * *"), "day-of-month 0 is out of range 1-31");
        assert_eq!(reason("0 0 1 1-13 *"), "month 13 is out of range 1-12");
        assert_eq!(reason("0 0 * * 1,8"), "day-of-week 8 is out of range 0-7");
        assert_eq!(reason("60 0 * * * *"), "second 60 is out of range 0-59");
        assert_eq!(reason("0 60 * * * *"), "minute 60 is out of range 0-59");
        assert_eq!(reason("70/5 * * * *"), "minute 70 is out of range 0-59");
        assert_eq!(reason("*/0 * * * *"), "minute step 0 is out of range 1-59");
        assert_eq!(reason("0 */24 * * *"), "hour step 24 is out of range 1-23");
        assert_eq!(
            reason("0 0 * * FOO"),
            "Pattern contains illegal characters: CronPattern contains illegal character 'F' in part 'FOO'; \
             the fields are: minute hour day-of-month month day-of-week"
        );
        // Forms the parser handles are not second-guessed.
        for good in [
            "*/15 * * * *",
            "0 0 L * *",
            "0 0 * * 1#2",
            "0 0 * JAN-MAR MON-FRI",
            "0 0 * * 7",
        ] {
            assert!(good.parse::<CronExpression>().is_ok(), "{good}");
        }
    }

    #[test]
    fn synchronization_state_parses_case_insensitively() {
        assert_eq!(
            SynchronizationState::parse("succeeded"),
            SynchronizationState::Succeeded
        );
        assert_eq!(
            SynchronizationState::parse("FAILED"),
            SynchronizationState::Failed
        );
        assert_eq!(SynchronizationState::parse(""), SynchronizationState::Unknown);
        assert_eq!(
            SynchronizationState::parse("Error"),
            SynchronizationState::Unknown
        );
        for state in SynchronizationState::ALL {
            assert_eq!(SynchronizationState::parse(state.as_str()), state);
        }
    }

    #[test]
    fn serde_uses_the_string_forms() {
        let a: OutputArtifact = serde_json::from_str(r#"{"name":"m","path":"P:m:1[a == \"x\"]"}"#).unwrap();
        assert_eq!(a.path.index, 1);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"name":"m","path":"P:m:1[a == \"x\"]"}"#
        );
        let err = serde_json::from_str::<OutputArtifact>(r#"{"name":"m","path":"bad"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid artifact path \"bad\""), "{err}");
    }

    proptest! {
        // Fuzz-like: arbitrary strings never panic a parser, and what parses round-trips through its string form.
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            if let Ok(v) = s.parse::<NamespacedName>() { prop_assert_eq!(v.to_string().parse::<NamespacedName>().ok(), Some(v)); }
            if let Ok(v) = s.parse::<PipelineIdentifier>() { prop_assert_eq!(v.to_string().parse::<PipelineIdentifier>().ok(), Some(v)); }
            if let Ok(v) = s.parse::<ArtifactPath>() { prop_assert_eq!(v.to_string().parse::<ArtifactPath>().ok(), Some(v)); }
            let _ = s.parse::<CronExpression>();
        }

        #[test]
        fn structured_strings_never_panic(s in "[a-z0-9:/\\[\\] *=.-]{0,30}") {
            let _ = s.parse::<NamespacedName>();
            let _ = s.parse::<PipelineIdentifier>();
            let _ = s.parse::<ArtifactPath>();
            let _ = s.parse::<CronExpression>();
        }
    }
}
