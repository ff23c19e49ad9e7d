//! Unit tests of the byte streams the Go operator hashes, written from its `object_hasher.go` and the
//! `ComputeHash`/`ComputeVersion`/`WriteRunSpec` functions of its hub types. The Go operator's own output is checked
//! separately, line by line, in `tests/contract/go_hash_vectors.rs`.

use super::*;
use crate::resources::v1beta1::{PipelineFramework, RunConfigurationRef, Schedule, ValueFrom};
use crate::values::{CronExpression, NamespacedName};

const HEAD: HashAlgorithm = HashAlgorithm::Head;

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
    assert_eq!(pipeline_version(&spec, HEAD), format!("t-{}", sha1_hex6(stream)));
    let other_provider = PipelineSpec {
        provider: "other/p".parse().unwrap(),
        ..spec.clone()
    };
    assert_eq!(
        pipeline_version(&other_provider, HEAD),
        pipeline_version(&spec, HEAD),
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
        ..RunScheduleSpec::default()
    };
    let base: &[u8] = b"p:v\x00e\x00k\x00v\x00\x00m\x00C:a:0[f == 1]\x00\x000 * * * *\x00";
    assert_eq!(run_schedule_version(&spec, HEAD), sha1_hex6(base));
    spec.schedule.end_time = Some(serde_json::from_str(r#""2024-01-01T00:00:00Z""#).unwrap());
    let with_end = [base, b"2024-01-01 00:00:00 +0000 UTC\0"].concat();
    assert_eq!(run_schedule_version(&spec, HEAD), sha1_hex6(&with_end));
    // The last second Go and the CRD accept, beyond k8s_openapi's `Time`; any offset hashes as UTC.
    spec.schedule.start_time = Some("9999-12-31T23:59:59Z".parse().unwrap());
    spec.schedule.end_time = Some("9999-12-31T23:59:59.5-01:00".parse().unwrap());
    let far = [
        base,
        b"9999-12-31 23:59:59 +0000 UTC\0",
        b"10000-01-01 00:59:59.5 +0000 UTC\0",
    ]
    .concat();
    assert_eq!(run_schedule_version(&spec, HEAD), sha1_hex6(&far));
    assert_eq!(
        run_schedule_version(&spec, HashAlgorithm::V0_7_0),
        sha1_hex6(&far)
    );
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
        service_account: String::new(),
        labels: Default::default(),
    };
    let stream: &[u8] = b"p\x00\x00a\x001\x00x\x00\x00x\x00\x00rc\x00ns\x00a\x00false\x00x\x00\x00rc\x00ns\x00a\x00true\x00\x00\x00";
    assert_eq!(run_spec_version(&spec, HEAD), sha1_hex6(stream));
    // v0.7.0 had no `optional`, so it writes nothing for it.
    let v0_7_0: &[u8] =
        b"p\x00\x00a\x001\x00x\x00\x00x\x00\x00rc\x00ns\x00a\x00x\x00\x00rc\x00ns\x00a\x00\x00\x00";
    assert_eq!(run_spec_version(&spec, HashAlgorithm::V0_7_0), sha1_hex6(v0_7_0));
    assert_eq!(
        run_version(&spec, "v1-abc", HEAD),
        sha1_hex6(&[stream, b"v1-abc\0"].concat())
    );
}

#[test]
fn run_options_are_hashed_only_when_set() {
    let plain = RunSpec {
        provider: "ns/provider".parse().unwrap(),
        pipeline: "p".parse().unwrap(),
        ..RunSpec::default()
    };
    // Without options: the Go operator's stream, nothing more.
    assert_eq!(run_spec_version(&plain, HEAD), sha1_hex6(b"p\x00\x00\x00\x00"));
    let with_account = RunSpec {
        service_account: "trainer".into(),
        ..plain.clone()
    };
    assert_eq!(
        run_spec_version(&with_account, HEAD),
        sha1_hex6(b"p\x00\x00\x00\x00serviceAccount\x00trainer\x00")
    );
    let with_labels = RunSpec {
        labels: [("team".to_string(), "ml".to_string())].into(),
        ..plain.clone()
    };
    assert_eq!(
        run_spec_version(&with_labels, HEAD),
        sha1_hex6(b"p\x00\x00\x00\x00labels\x00team\x00ml\x00\x00")
    );
    let mut schedule = RunScheduleSpec {
        pipeline: "p".parse().unwrap(),
        ..RunScheduleSpec::default()
    };
    let without = run_schedule_version(&schedule, HEAD);
    schedule.service_account = "trainer".into();
    assert_ne!(run_schedule_version(&schedule, HEAD), without);
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
    assert_eq!(experiment_version(&spec, HEAD), sha1_hex6(b"d <&>\0"));
}

#[test]
fn algorithms_are_named_as_the_version_command_takes_them() {
    for algorithm in HashAlgorithm::ALL {
        assert_eq!(algorithm.name().parse::<HashAlgorithm>(), Ok(algorithm));
    }
    assert_eq!(HashAlgorithm::default(), HEAD);
    assert!("v0.6.0".parse::<HashAlgorithm>().is_err());
}

#[test]
fn current_keeps_a_stored_version_of_either_algorithm_and_otherwise_gives_head() {
    let spec = PipelineSpec {
        provider: "ns/provider".parse().unwrap(),
        image: "[::1]:5000/img:dev".into(),
        env: vec![],
        framework: PipelineFramework {
            name: "tfx".into(),
            parameters: JsonMap::new(),
        },
    };
    let head = pipeline_version(&spec, HEAD);
    let v0_7_0 = pipeline_version(&spec, HashAlgorithm::V0_7_0);
    assert_eq!(
        head,
        format!("dev-{v0_7_0}"),
        "v0.7.0 does not read [::1] as a registry"
    );
    let current = |stored: &str| super::current(stored, |a| pipeline_version(&spec, a));
    assert_eq!(current(&head), head);
    assert_eq!(current(&v0_7_0), v0_7_0);
    assert_eq!(current(""), head);
    assert_eq!(current("dev-000000"), head, "a stale version gives way to head");
}
