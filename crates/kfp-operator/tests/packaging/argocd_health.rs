//! The Argo CD health check (`config/argocd/health.lua`, docs/gitops.md) run by a real Lua 5.1 interpreter (the
//! dialect of Argo CD's gopher-lua; Debian's `lua5.1`, installed by scripts/test.sh) against objects in every state
//! the operator writes, in v1beta1 and v1alpha5 form.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

fn lua() -> PathBuf {
    let lua = std::env::var_os("LUA").map_or_else(|| PathBuf::from("lua5.1"), PathBuf::from);
    let found = Command::new(&lua).arg("-v").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "the Argo CD health check test needs a Lua 5.1 interpreter: install Debian's lua5.1 (scripts/test.sh does) \
         or set LUA=/path/to/lua5.1 (tried {})",
        lua.display()
    );
    lua
}

/// `value` as a Lua table constructor (what Argo CD hands the script as `obj`).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Lua and JSON escapes agree for what these tests hold (quotes, backslashes, plain text).
        Value::String(s) => serde_json::to_string(s).unwrap(),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("[{}] = {}", serde_json::to_string(k).unwrap(), lua_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The health status and message the script returns for `object`.
fn health(object: Value) -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/argocd/health.lua");
    let chunk = format!(
        "obj = {}\nlocal hs = dofile({})\nio.write(hs.status, \"\\n\", hs.message or \"\")",
        lua_literal(&object),
        serde_json::to_string(script).unwrap()
    );
    let output = Command::new(lua()).args(["-e", &chunk]).output().unwrap();
    assert!(
        output.status.success(),
        "lua failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

fn object(kind: &str, generation: i64, status: Value) -> Value {
    json!({
        "apiVersion": "pipelines.kubeflow.org/v1beta1", "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "status": status
    })
}

fn synchronized(reason: &str, message: &str, observed: i64) -> Value {
    json!({
        "observedGeneration": observed,
        "conditions": [{"type": "Synchronized", "status": if reason == "Succeeded" { "True" } else { "False" },
            "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    })
}

#[test]
fn every_state_has_its_argo_cd_health() {
    let cases = [
        ("Succeeded", "", "Healthy", "Succeeded"),
        (
            "Failed",
            "the compile step failed: exit 1",
            "Degraded",
            "the compile step failed: exit 1",
        ),
        (
            "Pending",
            "waiting for pipeline 'ns/p' to have a succeeded version",
            "Suspended",
            "waiting for pipeline 'ns/p' to have a succeeded version",
        ),
        ("Creating", "", "Progressing", "Creating"),
        ("Updating", "", "Progressing", "Updating"),
        ("Deleting", "", "Progressing", "Deleting"),
        ("", "", "Progressing", "Waiting for the operator to reconcile it"),
    ];
    for kind in [
        "Pipeline",
        "Run",
        "RunConfiguration",
        "RunSchedule",
        "Experiment",
        "Provider",
    ] {
        for (reason, message, want, want_message) in cases {
            let got = health(object(kind, 2, synchronized(reason, message, 2)));
            assert_eq!(
                got,
                (want.to_string(), want_message.to_string()),
                "{kind} {reason:?}"
            );
        }
    }
}

#[test]
fn a_status_older_than_the_spec_or_none_is_progressing() {
    let (status, message) = health(object("Pipeline", 3, synchronized("Succeeded", "", 2)));
    assert_eq!(status, "Progressing");
    assert_eq!(message, "Waiting for the operator to reconcile generation 3");
    let mut fresh = object("Pipeline", 1, Value::Null);
    fresh.as_object_mut().unwrap().remove("status");
    assert_eq!(health(fresh).0, "Progressing");
}

#[test]
fn a_run_that_finished_failed_is_degraded() {
    let mut status = synchronized("Succeeded", "", 1);
    status["completionState"] = json!("Failed");
    assert_eq!(
        health(object("Run", 1, status.clone())),
        (
            "Degraded".to_string(),
            "The run finished with completionState Failed".to_string()
        )
    );
    status["completionState"] = json!("Succeeded");
    assert_eq!(health(object("Run", 1, status)).0, "Healthy");
}

#[test]
fn v1alpha5_objects_are_read_from_their_synchronization_state() {
    let v1alpha5 = |state: &str| {
        json!({
            "apiVersion": "pipelines.kubeflow.org/v1alpha5", "kind": "Pipeline",
            "metadata": {"name": "x", "generation": 1},
            "status": {"synchronizationState": state, "observedGeneration": 1}
        })
    };
    assert_eq!(health(v1alpha5("Succeeded")).0, "Healthy");
    assert_eq!(health(v1alpha5("Failed")).0, "Degraded");
    assert_eq!(health(v1alpha5("Updating")).0, "Progressing");
}
