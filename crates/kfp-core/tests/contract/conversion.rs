//! Conversion through the v1beta1 hub: round trips, the documented rules (docs/webhooks.md, "The conversion webhook"),
//! fixtures, errors, no panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
#![allow(clippy::collapsible_if)] // generator code reads better nested

use kfp_core::conversion::{ConversionConfig, ConversionError, Spoke, convert};
use kfp_core::resources::{REMAINDER_ANNOTATION, v1alpha5, v1alpha6, v1beta1};
use kfp_core::values::NamespacedName;
use proptest::prelude::*;
use serde_json::{Value, json};

const HUB: &str = "pipelines.kubeflow.org/v1beta1";
const A6: &str = "pipelines.kubeflow.org/v1alpha6";
const A5: &str = "pipelines.kubeflow.org/v1alpha5";

fn config() -> ConversionConfig {
    ConversionConfig {
        workflow_namespace: "kfp-operator-system".into(),
        default_tfx_image: "kfp-operator/tfx-compiler:latest".into(),
        default_provider: NamespacedName::new("kfp-operator-system", "kfp"),
        default_framework: "tfx".into(),
    }
}

fn round_trip(object: &Value, via: &str) -> Value {
    let own = object["apiVersion"].as_str().unwrap().to_string();
    let there = convert(object.clone(), via, &config()).unwrap();
    assert_eq!(there["apiVersion"], via);
    convert(there, &own, &config()).unwrap()
}

fn fixtures() -> Vec<Value> {
    // The repository's acceptance fixtures (`fixtures/README.md`).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
    let mut out = Vec::new();
    for name in [
        "provider-stub.yaml",
        "pipeline-stub.yaml",
        "pipeline-tfx.yaml",
        "experiment.yaml",
        "run.yaml",
        "runschedule.yaml",
        "runconfiguration-stub.yaml",
        "runconfiguration-dependency.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        for doc in text.split("\n---\n") {
            out.push(serde_saphyr::from_str::<Value>(doc).unwrap());
        }
    }
    out
}

/// The hub object as its Rust type writes it (artifact paths get their canonical `:0` index).
fn canonical(hub: &Value) -> Value {
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Value {
        serde_json::to_value(serde_json::from_value::<T>(v.clone()).unwrap()).unwrap()
    }
    match hub["kind"].as_str().unwrap() {
        "Pipeline" => via::<v1beta1::Pipeline>(hub),
        "Run" => via::<v1beta1::Run>(hub),
        "RunConfiguration" => via::<v1beta1::RunConfiguration>(hub),
        "RunSchedule" => via::<v1beta1::RunSchedule>(hub),
        "Experiment" => via::<v1beta1::Experiment>(hub),
        _ => via::<v1beta1::Provider>(hub),
    }
}

#[test]
fn hub_fixtures_survive_both_spokes() {
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), 9);
    for hub in fixtures {
        let typed_kind = hub["kind"].as_str().unwrap().to_string();
        for via in [A6, A5] {
            let back = round_trip(&hub, via);
            assert_eq!(back, canonical(&hub), "{typed_kind} via {via}");
        }
    }
}

#[test]
fn same_version_is_unchanged() {
    let odd = json!({"apiVersion": A6, "kind": "Pipeline", "spec": {"whatever": 1}});
    assert_eq!(convert(odd.clone(), A6, &config()).unwrap(), odd);
}

#[test]
fn v1alpha6_pipeline_to_hub_builds_a_tfx_framework() {
    let spoke = json!({"apiVersion": A6, "kind": "Pipeline", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"provider": "kfp", "image": "img:v1", "tfxComponents": "m.create", "beamArgs": [{"name": "a", "value": "b"}]}});
    let hub = convert(spoke.clone(), HUB, &config()).unwrap();
    assert_eq!(hub["spec"]["provider"], "kfp-operator-system/kfp");
    assert_eq!(
        hub["spec"]["framework"],
        json!({"name": "tfx", "parameters": {"components": "m.create", "beamArgs": [{"name": "a", "value": "b"}]}})
    );
    assert!(hub["metadata"].get("annotations").is_none());
    assert_eq!(round_trip(&spoke, HUB), spoke);
}

#[test]
fn v1alpha6_non_tfx_framework_is_stashed_whole() {
    let hub = json!({"apiVersion": HUB, "kind": "Pipeline", "metadata": {"name": "p"},
        "spec": {"provider": "other-ns/kfp", "image": "img", "framework": {"name": "kfpsdk", "parameters": {"pipeline": "a.b"}}}});
    let spoke = convert(hub.clone(), A6, &config()).unwrap();
    let remainder: Value = serde_json::from_str(
        spoke["metadata"]["annotations"][REMAINDER_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(remainder["framework"]["name"], "kfpsdk");
    assert_eq!(remainder["providerNamespace"], "other-ns");
    assert_eq!(spoke["spec"]["provider"], "kfp");
    assert_eq!(convert(spoke, HUB, &config()).unwrap(), hub);
}

#[test]
fn missing_tfx_components_is_an_error() {
    let spoke = json!({"apiVersion": A6, "kind": "Pipeline", "metadata": {"name": "p"},
        "spec": {"provider": "kfp", "image": "img", "tfxComponents": ""}});
    let err = convert(spoke, HUB, &config()).unwrap_err();
    assert!(matches!(err, ConversionError::MissingTfxComponents { .. }));
    assert!(
        err.to_string()
            .starts_with("missing tfx components in framework parameters"),
        "{err}"
    );
    assert!(err.to_string().contains("spec.tfxComponents"), "{err}");
}

#[test]
fn v1alpha5_pipeline_without_components_gets_the_default_framework() {
    let spoke =
        json!({"apiVersion": A5, "kind": "Pipeline", "metadata": {"name": "p"}, "spec": {"image": "img"}});
    let hub = convert(spoke.clone(), HUB, &config()).unwrap();
    assert_eq!(hub["spec"]["framework"], json!({"name": "tfx", "parameters": {}}));
    assert_eq!(hub["spec"]["provider"], "kfp-operator-system/kfp");
    assert_eq!(round_trip(&spoke, HUB), spoke);
}

#[test]
fn v1alpha5_map_form_becomes_a_sorted_list_and_comes_back() {
    let spoke = json!({"apiVersion": A5, "kind": "Run",
        "metadata": {"name": "r", "annotations": {"pipelines.kubeflow.org/provider": "vai"}},
        "spec": {"pipeline": "p", "runtimeParameters": {"learning_rate": "0.01", "epochs": "3"}}});
    let hub = convert(spoke.clone(), HUB, &config()).unwrap();
    assert_eq!(
        hub["spec"]["parameters"],
        json!([{"name": "epochs", "value": "3"}, {"name": "learning_rate", "value": "0.01"}])
    );
    assert_eq!(hub["spec"]["provider"], "kfp-operator-system/vai");
    assert_eq!(round_trip(&spoke, HUB), spoke);
    assert_eq!(round_trip(&spoke, A6), spoke);
}

#[test]
fn v1alpha5_runtime_parameter_of_wrong_type_is_named() {
    let spoke = json!({"apiVersion": A5, "kind": "Run", "metadata": {"name": "r"},
        "spec": {"pipeline": "p", "runtimeParameters": {"lr": 0.01}}});
    let err = convert(spoke, HUB, &config()).unwrap_err().to_string();
    assert!(err.contains("runtimeParameters.lr must be a string"), "{err}");
}

#[test]
fn v1alpha5_runconfiguration_schedules_are_cron_strings() {
    let spoke = json!({"apiVersion": A5, "kind": "RunConfiguration", "metadata": {"name": "rc"},
        "spec": {"run": {"pipeline": "p", "runtimeParameters": [{"name": "x", "valueFrom": {"runConfigurationRef": {"name": "ns/base", "outputArtifact": "examples"}}}]},
                 "triggers": {"schedules": ["0 * * * *"], "onChange": ["pipeline"]}}});
    let hub = convert(spoke.clone(), HUB, &config()).unwrap();
    assert_eq!(
        hub["spec"]["triggers"]["schedules"],
        json!([{"cronExpression": "0 * * * *"}])
    );
    assert_eq!(round_trip(&spoke, HUB), spoke);
}

#[test]
fn decision_14_optional_run_configuration_ref_survives_v1alpha6() {
    let hub = json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "r"},
        "spec": {"provider": "kfp-operator-system/kfp", "parameters": [{"name": "x", "valueFrom": {"runConfigurationRef": {"name": "ns/base", "outputArtifact": "a", "optional": true}}}]}});
    assert_eq!(round_trip(&hub, A6), hub);
    assert_eq!(round_trip(&hub, A5), hub);
}

#[test]
fn run_options_survive_both_spokes_for_every_run_kind() {
    let options = json!({"serviceAccount": "trainer@p.iam.gserviceaccount.com", "labels": {"team": "ml", "cost-center": "42"}});
    let with = |mut spec: Value| {
        spec.as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        spec
    };
    let run_spec = json!({"provider": "kfp-operator-system/kfp", "pipeline": "p", "parameters": [{"name": "a", "value": "1"}]});
    let objects = [
        json!({"apiVersion": HUB, "kind": "Run", "metadata": {"name": "r", "namespace": "ns"}, "spec": with(run_spec.clone())}),
        json!({"apiVersion": HUB, "kind": "RunConfiguration", "metadata": {"name": "rc", "namespace": "ns"},
            "spec": {"run": with(run_spec.clone()), "triggers": {"schedules": [{"cronExpression": "0 * * * *"}]}}}),
        json!({"apiVersion": HUB, "kind": "RunSchedule", "metadata": {"name": "rs", "namespace": "ns"},
            "spec": with(json!({"provider": "kfp-operator-system/kfp", "pipeline": "p", "schedule": {"cronExpression": "0 * * * *"}}))}),
    ];
    for hub in objects {
        for via in [A6, A5] {
            let spoke = convert(hub.clone(), via, &config()).unwrap();
            // The spoke has no such fields: they wait in the remainder annotation.
            let remainder = spoke["metadata"]["annotations"][REMAINDER_ANNOTATION]
                .as_str()
                .unwrap_or_default();
            assert!(
                remainder.contains("trainer@p.iam"),
                "{} via {via}: {spoke}",
                hub["kind"]
            );
            assert_eq!(
                round_trip(&hub, via),
                canonical(&hub),
                "{} via {via}",
                hub["kind"]
            );
        }
    }
}

#[test]
fn provider_default_beam_args_become_one_json_patch() {
    let spoke = json!({"apiVersion": A6, "kind": "Provider", "metadata": {"name": "kfp", "namespace": "kfp-operator-system"},
        "spec": {"serviceImage": "svc", "image": "my-tfx:1", "serviceAccount": "sa", "pipelineRootStorage": "gs://x",
                 "defaultBeamArgs": [{"name": "project", "value": "p"}, {"name": "region", "value": "r"}]}});
    let hub = convert(spoke.clone(), HUB, &config()).unwrap();
    let patches = &hub["spec"]["frameworks"][0]["patches"];
    assert_eq!(patches[0]["type"], "json");
    let ops: Value = serde_json::from_str(patches[0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        ops,
        json!([
        {"op": "add", "path": "/framework/parameters/beamArgs/0", "value": {"name": "project", "value": "p"}},
        {"op": "add", "path": "/framework/parameters/beamArgs/0", "value": {"name": "region", "value": "r"}}])
    );
    assert_eq!(round_trip(&spoke, HUB), spoke);
}

#[test]
fn provider_without_tfx_framework_cannot_become_v1alpha6() {
    let hub = json!({"apiVersion": HUB, "kind": "Provider", "metadata": {"name": "stub"},
        "spec": {"serviceImage": "svc", "serviceAccount": "sa", "pipelineRootStorage": "x", "frameworks": [{"name": "stub", "image": "i"}]}});
    let err = convert(hub, A6, &config()).unwrap_err();
    assert!(
        matches!(err, ConversionError::MissingTfxFramework { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("spec.frameworks"), "{err}");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let cfg = config();
    assert!(matches!(
        convert(json!({}), HUB, &cfg),
        Err(ConversionError::MissingField { field: "apiVersion" })
    ));
    assert!(matches!(
        convert(json!({"apiVersion": "x/v1", "kind": "Run"}), HUB, &cfg),
        Err(ConversionError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        convert(json!({"apiVersion": A6, "kind": "Pod"}), HUB, &cfg),
        Err(ConversionError::UnsupportedKind { .. })
    ));
    let bad_remainder = json!({"apiVersion": A6, "kind": "Experiment", "metadata": {"name": "e", "annotations": {REMAINDER_ANNOTATION: "{not json"}}, "spec": {"provider": "kfp"}});
    let err = convert(bad_remainder, HUB, &cfg).unwrap_err();
    assert!(
        matches!(err, ConversionError::InvalidRemainder { .. })
            && err.to_string().contains(REMAINDER_ANNOTATION),
        "{err}"
    );
    let rs = json!({"apiVersion": A5, "kind": "RunSchedule", "metadata": {"name": "s"}, "spec": {"schedule": "0 * * * *",
        "runtimeParameters": [{"name": "x", "valueFrom": {"runConfigurationRef": {"name": "a/b", "outputArtifact": "o"}}}]}});
    let err = convert(rs, HUB, &cfg).unwrap_err();
    assert!(
        err.to_string().contains("spec.runtimeParameters[0].valueFrom"),
        "{err}"
    );
}

#[test]
fn typed_api_round_trips() {
    let spoke = v1alpha6::Experiment {
        metadata: Default::default(),
        spec: v1alpha6::ExperimentSpec {
            provider: "kfp".into(),
            description: "d".into(),
        },
        status: None,
    };
    let hub: v1beta1::Experiment = spoke.to_hub(&config()).unwrap();
    assert_eq!(
        hub.spec.provider,
        NamespacedName::new("kfp-operator-system", "kfp")
    );
    assert_eq!(v1alpha6::Experiment::from_hub(&hub, &config()).unwrap(), spoke);
    let a5: v1alpha5::Experiment = v1alpha5::Experiment::from_hub(&hub, &config()).unwrap();
    assert_eq!(a5.to_hub(&config()).unwrap(), hub);
}

#[test]
fn crds_serve_three_versions() {
    for crd in kfp_core::resources::crd::all().unwrap() {
        let versions: Vec<_> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.clone(), v.storage, v.deprecated))
            .collect();
        assert_eq!(versions.len(), 3, "{versions:?}");
        assert!(versions.contains(&("v1beta1".into(), true, None)));
        assert!(
            versions
                .iter()
                .any(|(n, _, d)| n == "v1alpha5" && *d == Some(true))
        );
        assert!(crd.spec.conversion.is_some());
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}[a-z0-9]"
}

fn named_values() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (name(), "[ -~]{1,8}").prop_map(|(n, v)| json!({"name": n, "value": v})),
        0..3,
    )
}

fn provider_ns() -> impl Strategy<Value = Option<String>> {
    prop::option::of(name().prop_filter("not the default", |n| n != "kfp-operator-system"))
}

fn meta(provider_namespace: Option<String>, optional: Option<Vec<String>>) -> Value {
    let mut remainder = serde_json::Map::new();
    if let Some(ns) = provider_namespace {
        remainder.insert("providerNamespace".into(), json!(ns));
    }
    if let Some(o) = optional.filter(|o| !o.is_empty()) {
        remainder.insert("optionalParameters".into(), json!(o));
    }
    if remainder.is_empty() {
        json!({"name": "obj", "namespace": "default"})
    } else {
        json!({"name": "obj", "namespace": "default", "annotations": {REMAINDER_ANNOTATION: Value::Object(remainder).to_string()}})
    }
}

fn conditions() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::sample::select(vec!["Succeeded", "Failed", "Creating", "Updating"]).prop_map(|s| {
        json!({"synchronizationState": s, "version": "abc123", "observedGeneration": 2,
               "conditions": [{"type": "Synchronized", "status": "Unknown", "reason": s, "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 2}]})
    }))
}

fn a6_pipeline() -> impl Strategy<Value = Value> {
    (
        provider_ns(),
        name(),
        "[a-z]{1,6}\\.[a-z]{1,6}",
        named_values(),
        named_values(),
        conditions(),
    )
        .prop_map(|(ns, provider, components, env, beam, status)| {
            let mut o = json!({"apiVersion": A6, "kind": "Pipeline", "metadata": meta(ns, None),
                "spec": {"provider": provider, "image": "img:1", "tfxComponents": components}});
            if !env.is_empty() {
                o["spec"]["env"] = json!(env);
            }
            if !beam.is_empty() {
                o["spec"]["beamArgs"] = json!(beam);
            }
            if let Some(s) = status {
                o["status"] = s;
            }
            o
        })
}

fn runtime_parameters() -> impl Strategy<Value = (Vec<Value>, Vec<String>)> {
    prop::collection::vec(
        (name(), "[a-z0-9]{1,5}", any::<bool>(), any::<bool>()).prop_map(|(n, v, from, optional)| {
            if from {
                (json!({"name": n, "valueFrom": {"runConfigurationRef": {"name": "base/rc", "outputArtifact": "examples"}}}), optional.then_some(n))
            } else {
                (json!({"name": n, "value": v}), None)
            }
        }),
        0..4,
    )
    .prop_map(|items| {
        let mut optional: Vec<String> = items.iter().filter_map(|(_, o)| o.clone()).collect();
        optional.dedup();
        (items.into_iter().map(|(p, _)| p).collect::<Vec<Value>>(), optional)
    })
    .prop_filter("unique names", |(p, _)| {
        let names: std::collections::BTreeSet<_> = p.iter().map(|p| p["name"].to_string()).collect();
        names.len() == p.len()
    })
}

fn a6_run() -> impl Strategy<Value = Value> {
    (provider_ns(), name(), runtime_parameters()).prop_map(|(ns, provider, (params, optional))| {
        let mut o = json!({"apiVersion": A6, "kind": "Run", "metadata": meta(ns, Some(optional)),
            "spec": {"provider": provider, "pipeline": "p:v1", "experimentName": "e"}});
        if !params.is_empty() {
            o["spec"]["runtimeParameters"] = json!(params);
        }
        o
    })
}

fn a6_rc() -> impl Strategy<Value = Value> {
    (provider_ns(), name(), runtime_parameters(), any::<bool>()).prop_map(|(ns, provider, (params, optional), with_status)| {
        let mut o = json!({"apiVersion": A6, "kind": "RunConfiguration", "metadata": meta(ns, Some(optional)),
            "spec": {"run": {"provider": provider, "pipeline": "p"}, "triggers": {"schedules": [{"cronExpression": "0 * * * *"}], "onChange": ["runSpec"]}}});
        if !params.is_empty() { o["spec"]["run"]["runtimeParameters"] = json!(params); }
        if with_status {
            o["status"] = json!({"synchronizationState": "Succeeded", "provider": provider, "observedPipelineVersion": "v1",
                "triggeredPipelineVersion": "v0", "latestRuns": {"succeeded": {"providerId": "run-1"}}, "triggers": {"runSpec": {"version": "x"}}});
        }
        o
    })
}

fn a6_simple() -> impl Strategy<Value = Value> {
    (provider_ns(), name(), named_values(), conditions(), prop::sample::select(vec!["RunSchedule", "Experiment"])).prop_map(
        |(ns, provider, params, status, kind)| {
            let mut o = if kind == "RunSchedule" {
                json!({"apiVersion": A6, "kind": kind, "metadata": meta(ns, None), "spec": {"provider": provider, "pipeline": "p",
                    "runtimeParameters": params, "schedule": {"cronExpression": "0 0 * * *", "startTime": "2024-01-01T00:00:00Z"}}})
            } else {
                json!({"apiVersion": A6, "kind": kind, "metadata": meta(ns, None), "spec": {"provider": provider, "description": "d"}})
            };
            if params.is_empty() { if let Some(spec) = o["spec"].as_object_mut() { spec.remove("runtimeParameters"); } }
            if let Some(mut s) = status { s["provider"] = json!({"name": provider, "id": "id-1"}); o["status"] = s; }
            o
        },
    )
}

fn a6_provider() -> impl Strategy<Value = Value> {
    (named_values(), prop::sample::select(vec!["kfp-operator/tfx-compiler:latest", "custom:1"]), any::<bool>()).prop_map(|(args, image, status)| {
        let mut o = json!({"apiVersion": A6, "kind": "Provider", "metadata": {"name": "kfp"},
            "spec": {"serviceImage": "svc", "image": image, "serviceAccount": "sa", "pipelineRootStorage": "gs://b", "parameters": {"project": "p"}}});
        if !args.is_empty() { o["spec"]["defaultBeamArgs"] = json!(args); }
        if status { o["status"] = json!({"synchronizationState": "Succeeded"}); }
        o
    })
}

fn to_a5(a6: Value, provider_annotation: bool, map_form: bool) -> Value {
    let mut o = a6;
    o["apiVersion"] = json!(A5);
    let kind = o["kind"].as_str().unwrap_or_default().to_string();
    let provider = if kind == "RunConfiguration" {
        o["spec"]["run"]["provider"].take()
    } else {
        o["spec"]["provider"].take()
    };
    if let Some(spec) = o["spec"].as_object_mut() {
        spec.remove("provider");
    }
    if let Some(run) = o["spec"].get_mut("run").and_then(Value::as_object_mut) {
        run.remove("provider");
    }
    if provider_annotation && kind != "Provider" {
        o["metadata"]["annotations"]["pipelines.kubeflow.org/provider"] = provider;
    }
    if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(p) = status.remove("provider") {
            if kind == "RunConfiguration" {
                status.insert("provider".into(), p);
            } else if let Some(id) = p.get("id") {
                status.insert("providerId".into(), id.clone());
            }
        }
    }
    if kind == "RunSchedule" {
        o["spec"]["schedule"] = json!("0 0 * * *");
    }
    if kind == "RunConfiguration" {
        o["spec"]["triggers"]["schedules"] = json!(["0 * * * *"]);
        if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
            s.remove("provider");
        }
    }
    if map_form {
        let params = if kind == "RunConfiguration" {
            o["spec"]["run"].get_mut("runtimeParameters")
        } else {
            o["spec"].get_mut("runtimeParameters")
        };
        if let Some(params) = params {
            let map: Option<Value> = params
                .as_array()
                .filter(|l| !l.is_empty() && l.iter().all(|p| p.get("valueFrom").is_none()))
                .map(|list| {
                    Value::Object(
                        list.iter()
                            .map(|p| {
                                (
                                    p["name"].as_str().unwrap_or_default().to_string(),
                                    json!(p["value"].as_str().unwrap_or_default()),
                                )
                            })
                            .collect(),
                    )
                });
            if let Some(map) = map {
                *params = map;
            }
        }
    }
    // v1alpha5 keeps the provider namespace only with the annotation, and optional flags per name.
    if !provider_annotation && o["metadata"].get("annotations").is_some() {
        let annotations = &mut o["metadata"]["annotations"];
        if let Some(raw) = annotations
            .get(REMAINDER_ANNOTATION)
            .and_then(Value::as_str)
            .map(str::to_string)
        {
            let mut remainder: Value = serde_json::from_str(&raw).unwrap_or_default();
            if let Some(r) = remainder.as_object_mut() {
                r.remove("providerNamespace");
            }
            if remainder.as_object().is_some_and(|r| r.is_empty()) {
                if let Some(a) = annotations.as_object_mut() {
                    a.remove(REMAINDER_ANNOTATION);
                }
            } else {
                annotations[REMAINDER_ANNOTATION] = json!(remainder.to_string());
            }
        }
        if o["metadata"]["annotations"]
            .as_object()
            .is_some_and(|a| a.is_empty())
        {
            if let Some(m) = o["metadata"].as_object_mut() {
                m.remove("annotations");
            }
        }
    }
    o
}

fn a6_any() -> impl Strategy<Value = Value> {
    prop_oneof![a6_pipeline(), a6_run(), a6_rc(), a6_simple(), a6_provider()]
}

fn garbled() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            A5,
            A6,
            HUB,
            "Pipeline",
            "Run",
            "RunConfiguration",
            "RunSchedule",
            "Experiment",
            "Provider",
            REMAINDER_ANNOTATION
        ])
        .prop_map(Value::from),
    ];
    let tree = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "apiVersion",
                    "kind",
                    "metadata",
                    "spec",
                    "status",
                    "annotations",
                    "provider",
                    "runtimeParameters",
                    "tfxComponents",
                    "image",
                    "frameworks",
                    "run",
                    "name"
                ])
                .prop_map(String::from),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (
        tree,
        prop::sample::select(vec![A5, A6, HUB]),
        prop::sample::select(vec![
            "Pipeline",
            "Run",
            "RunConfiguration",
            "RunSchedule",
            "Experiment",
            "Provider",
        ]),
    )
        .prop_map(|(mut t, v, k)| {
            if let Some(o) = t.as_object_mut() {
                o.insert("apiVersion".into(), json!(v));
                o.insert("kind".into(), json!(k));
            }
            t
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn v1alpha6_spoke_hub_spoke_is_lossless(spoke in a6_any()) {
        prop_assert_eq!(round_trip(&spoke, HUB), spoke.clone());
        prop_assert_eq!(round_trip(&spoke, A5), spoke);
    }

    #[test]
    fn v1alpha5_spoke_hub_spoke_is_lossless(a6 in a6_any(), annotated in any::<bool>(), map_form in any::<bool>()) {
        let spoke = to_a5(a6, annotated, map_form);
        prop_assert_eq!(round_trip(&spoke, HUB), spoke.clone());
        prop_assert_eq!(round_trip(&spoke, A6), spoke);
    }

    #[test]
    fn hub_spoke_hub_is_lossless(a6 in a6_any(), to in prop::sample::select(vec![A6, A5])) {
        let hub = convert(a6, HUB, &config()).unwrap();
        prop_assert_eq!(round_trip(&hub, to), hub);
    }

    #[test]
    fn garbled_objects_never_panic(object in garbled(), to in prop::sample::select(vec![A5, A6, HUB])) {
        let _ = convert(object, to, &config());
    }
}
