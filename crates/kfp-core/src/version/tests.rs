//! Version vectors computed independently by the Go operator's own hashing code.
//!
//! DERIVATION: `crates/kfp-core/tests/version_vectors/main.go` is a port of the Go KFP Operator's hashing
//! (`apis/pipelines/object_hasher.go`; `ComputeHash`/`ComputeVersion`/`WriteRunSpec`/`cmpParameters` of
//! `apis/pipelines/hub/{pipeline,experiment,runschedule,run}_types.go`), using `github.com/distribution/reference`
//! v0.6.0 (as the operator's go.mod) and Go 1.26's `encoding/json`. The tables below are its output, pasted verbatim:
//!
//! ```sh
//! cd crates/kfp-core/tests/version_vectors
//! TZ=UTC go run . < cases.json        # VECTORS
//! TZ=UTC go run . < json_cases.json   # JSON_AND_TIME_VECTORS
//! ```
//!
//! The inputs are the JSON files next to the Go program, read here as they are.

use super::*;
use crate::resources::v1beta1::{PipelineFramework, RunConfigurationRef, Schedule, ValueFrom};
use crate::values::{CronExpression, NamespacedName};
use serde_json::Value;

const CASES: &str = include_str!("../../tests/version_vectors/cases.json");
const JSON_CASES: &str = include_str!("../../tests/version_vectors/json_cases.json");

/// `TZ=UTC go run . < cases.json`
const VECTORS: &[(&str, &str)] = &[
    ("pipeline_tfx_fixture", r#"v1-3929ba"#),
    ("pipeline_stub_fixture", r#"latest-955e67"#),
    ("pipeline_env_order", r#"v1-8df66d"#),
    ("pipeline_env_order_permuted", r#"v1-8df66d"#),
    ("pipeline_nested_numbers", r#"2024.01-rc.1-4f45cd"#),
    ("pipeline_strings", r#"latest-a3012a"#),
    ("pipeline_nulls", r#"1.2.3-a18db3"#),
    ("pipeline_untagged_docker_hub", r#"latest-263faf"#),
    ("pipeline_digest_only", r#"70fdd1"#),
    ("pipeline_tag_and_digest", r#"v2-2c2402"#),
    ("pipeline_malformed_image", r#"8077f0"#),
    ("pipeline_uppercase_repository", r#"c04f7d"#),
    ("pipeline_uppercase_domain", r#"Tag_1-dcf626"#),
    ("pipeline_bad_digest_length", r#"0b2c6a"#),
    ("pipeline_hex64_name", r#"990017"#),
    ("pipeline_empty_image", r#"29e2dc"#),
    ("experiment_fixture", r#"daa88c"#),
    ("experiment_empty", r#"5ba93c"#),
    ("runschedule_fixture", r#"48008e"#),
    ("runschedule_no_times", r#"495fd4"#),
    ("runschedule_start_only_offset_fraction", r#"eca233"#),
    ("runschedule_end_only", r#"f7dfa2"#),
    ("runspec_run_fixture", r#"056d5e"#),
    ("runspec_rc_dependency_fixture", r#"219b95"#),
    ("runspec_rc_stub_fixture", r#"feb1bd"#),
    ("runspec_parameter_order", r#"280acf"#),
    ("runspec_parameter_order_permuted", r#"83627d"#),
    ("run_fixture", r#"541166"#),
    ("run_fixture_no_observed_version", r#"4261aa"#),
];

/// `TZ=UTC go run . < json_cases.json` (the `control` case's DEL character is literal in Go's output, as here).
const JSON_AND_TIME_VECTORS: &[(&str, &str)] = &[
    ("1e21", r#"1e+21"#),
    ("1e20", r#"100000000000000000000"#),
    ("1e-7", r#"1e-7"#),
    ("0.000001", r#"0.000001"#),
    ("100", r#"100"#),
    ("-0", r#"-0"#),
    ("-0.0", r#"-0"#),
    ("0.1", r#"0.1"#),
    ("1.5e300", r#"1.5e+300"#),
    ("-1.25e-10", r#"-1.25e-10"#),
    ("123456789.123", r#"123456789.123"#),
    ("12345678901234567890", r#"12345678901234567000"#),
    ("9007199254740993", r#"9007199254740992"#),
    ("-9223372036854775808", r#"-9223372036854776000"#),
    ("1e100", r#"1e+100"#),
    ("5e-324", r#"5e-324"#),
    ("1.7976931348623157e308", r#"1.7976931348623157e+308"#),
    ("123e-20", r#"1.23e-18"#),
    ("999999999999999999999", r#"1e+21"#),
    ("html", r#""\u003ca\u0026b\u003e""#),
    ("separators", r#""\u2028x\u2029""#),
    ("control", r#""\u0000\u0001\b\f\n\r\t\u001f""#),
    ("quotes", r#""\"\\/""#),
    ("unicode", r#""héllo ☃ 😀 �""#),
    (
        "object_keys",
        r#"{"\u003c":"\u003e","B":false,"a":{"x":true,"y":[1,"x",null]},"b":1,"é":0}"#,
    ),
    ("empty_containers", r#"[{},[],""]"#),
    ("null", r#"null"#),
    ("time_utc", r#"2024-01-01 00:00:00 +0000 UTC"#),
    ("time_offset_fraction", r#"2024-06-01 10:30:45.123 +0000 UTC"#),
    ("time_nanos", r#"2024-12-31 23:59:59.000000001 +0000 UTC"#),
    ("time_trailing_zeros", r#"2024-02-29 08:09:10.12 +0000 UTC"#),
    ("time_early_year", r#"0099-01-02 03:34:05 +0000 UTC"#),
];

fn cases(text: &str) -> Vec<Value> {
    serde_json::from_str(text).unwrap()
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap()
}

fn version_of(case: &Value) -> String {
    let spec = case["spec"].clone();
    match field(case, "kind") {
        "pipeline" => pipeline_version(&serde_json::from_value(spec).unwrap()),
        "experiment" => experiment_version(&serde_json::from_value(spec).unwrap()),
        "runschedule" => run_schedule_version(&serde_json::from_value(spec).unwrap()),
        "runspec" => run_spec_version(&serde_json::from_value(spec).unwrap()),
        "run" => run_version(
            &serde_json::from_value(spec).unwrap(),
            field(case, "observedPipelineVersion"),
        ),
        "json" => canonical_json(&spec),
        "time" => {
            let mut out = String::new();
            write_go_time(&mut out, &serde_json::from_value(spec).unwrap()).unwrap();
            out
        }
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn go_vectors_match() {
    for (text, vectors) in [(CASES, VECTORS), (JSON_CASES, JSON_AND_TIME_VECTORS)] {
        let cases = cases(text);
        assert_eq!(cases.len(), vectors.len());
        for (case, (name, expected)) in cases.iter().zip(vectors.iter()) {
            assert_eq!(field(case, "name"), *name);
            assert_eq!(version_of(case), *expected, "{name}");
        }
    }
}

fn sha1_hex6(stream: &[u8]) -> String {
    hex::encode(&Sha1::digest(stream)[..3])
}

#[test]
fn pipeline_stream_is_image_env_framework_name_and_parameters() {
    let spec = PipelineSpec {
        provider: "ns/provider".parse().unwrap(),
        image: "img:t".into(),
        env: vec![NamedValue::new("b", "2"), NamedValue::new("a", "1")],
        framework: PipelineFramework {
            name: "tfx".into(),
            parameters: serde_json::from_str(r#"{"z": {"y": 1e21, "x": "<&>"}, "n": null, "a": 0.5}"#)
                .unwrap(),
        },
    };
    let stream: &[u8] =
        b"img:t\x00a\x001\x00b\x002\x00\x00tfx\x00a\x000.5\x00n\x00z\x00{\"x\":\"\\u003c\\u0026\\u003e\",\"y\":1e+21}\x00";
    assert_eq!(pipeline_version(&spec), format!("t-{}", sha1_hex6(stream)));
    let other_provider = PipelineSpec {
        provider: "other/p".parse().unwrap(),
        ..spec.clone()
    };
    assert_eq!(
        pipeline_version(&other_provider),
        pipeline_version(&spec),
        "provider is never hashed"
    );
}

#[test]
fn run_schedule_stream_writes_times_only_when_set() {
    let mut spec = RunScheduleSpec {
        provider: "ns/provider".parse().unwrap(),
        pipeline: "p:v".parse().unwrap(),
        experiment_name: "e".into(),
        parameters: vec![NamedValue::new("k", "v")],
        artifacts: vec![serde_json::from_str(r#"{"name": "m", "path": "C:a[f == 1]"}"#).unwrap()],
        schedule: Schedule {
            cron_expression: CronExpression::unchecked("0 * * * *"),
            start_time: None,
            end_time: None,
        },
    };
    let base: &[u8] = b"p:v\x00e\x00k\x00v\x00\x00m\x00C:a:0[f == 1]\x00\x000 * * * *\x00";
    assert_eq!(run_schedule_version(&spec), sha1_hex6(base));
    spec.schedule.end_time = Some(serde_json::from_str(r#""2024-01-01T00:00:00Z""#).unwrap());
    let with_end = [base, b"2024-01-01 00:00:00 +0000 UTC\0"].concat();
    assert_eq!(run_schedule_version(&spec), sha1_hex6(&with_end));
}

fn parameter(name: &str, value: &str, rc: Option<(&str, &str, bool)>) -> Parameter {
    Parameter {
        name: name.into(),
        value: value.into(),
        value_from: rc.map(|(rc, artifact, optional)| ValueFrom {
            run_configuration_ref: RunConfigurationRef {
                name: rc.parse().unwrap(),
                output_artifact: artifact.into(),
                optional,
            },
        }),
    }
}

#[test]
fn run_spec_stream_sorts_parameters_like_go() {
    let spec = RunSpec {
        provider: "ns/provider".parse().unwrap(),
        pipeline: "p".parse().unwrap(),
        experiment_name: String::new(),
        parameters: vec![
            parameter("x", "", Some(("ns/rc", "a", true))),
            parameter("x", "", Some(("ns/rc", "a", false))),
            parameter("x", "", None),
            parameter("a", "1", None),
        ],
        artifacts: vec![],
    };
    let stream: &[u8] = b"p\x00\x00a\x001\x00x\x00\x00x\x00\x00rc\x00ns\x00a\x00false\x00x\x00\x00rc\x00ns\x00a\x00true\x00\x00\x00";
    assert_eq!(run_spec_version(&spec), sha1_hex6(stream));
    assert_eq!(
        run_version(&spec, "v1-abc"),
        sha1_hex6(&[stream, b"v1-abc\0"].concat())
    );
}

#[test]
fn references_differing_only_in_namespace_keep_their_order_as_in_go() {
    // Go's cmpParameters compares only the names of different references, so these are "equal" to it and its
    // insertion sort leaves them in input order; their output artifacts are not compared either.
    let a = parameter("x", "", Some(("ns1/rc", "z", false)));
    let b = parameter("x", "", Some(("ns2/rc", "a", false)));
    let mut items = vec![&a, &b];
    go_insertion_sort(&mut items, |p, q| compare_parameters(p, q) == Ordering::Less);
    assert_eq!(items, vec![&a, &b]);
    let mut items = vec![&b, &a];
    go_insertion_sort(&mut items, |p, q| compare_parameters(p, q) == Ordering::Less);
    assert_eq!(items, vec![&b, &a]);
    assert_eq!(
        compare_parameters(&a, &parameter("x", "", Some(("rc", "a", false)))),
        Ordering::Equal
    );
    assert_eq!(
        NamespacedName::new("ns1", "rc"),
        a.value_from.as_ref().unwrap().run_configuration_ref.name
    );
}

#[test]
fn experiment_stream_is_the_description() {
    let spec = ExperimentSpec {
        provider: "ns/p".parse().unwrap(),
        description: "d <&>".into(),
    };
    assert_eq!(experiment_version(&spec), sha1_hex6(b"d <&>\0"));
}

#[test]
fn go_time_strings() {
    let render = |ts: &str| {
        let mut out = String::new();
        write_go_time(
            &mut out,
            &serde_json::from_value(Value::String(ts.into())).unwrap(),
        )
        .unwrap();
        out
    };
    assert_eq!(render("1970-01-01T00:00:00Z"), "1970-01-01 00:00:00 +0000 UTC");
    assert_eq!(
        render("1969-12-31T23:59:59.5Z"),
        "1969-12-31 23:59:59.5 +0000 UTC"
    );
    assert_eq!(
        render("2000-02-29T12:00:00.010Z"),
        "2000-02-29 12:00:00.01 +0000 UTC"
    );
    assert_eq!(render("9999-12-30T21:59:59Z"), "9999-12-30 21:59:59 +0000 UTC");
}
