//! The control plane itself: it starts, answers, authenticates and authorizes for real, applies
//! manifests, and leaves no processes or folders behind.

// Test code: helpers outside #[test] functions may fail loudly too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kfp_testenv::{ApplyOptions, TEST_NAMESPACE_LABEL, TestEnv, apply_yaml_file, wait_for};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

const TIMEOUT: Duration = Duration::from_secs(30);

/// True while `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_until_gone(pids: &[u32], dir: &Path) {
    wait_for(
        format!("processes {pids:?} to end and {} to be removed", dir.display()),
        TIMEOUT,
        || async { Ok::<_, String>((!pids.iter().any(|p| alive(*p)) && !dir.exists()).then_some(())) },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_new_env_starts_answers_and_cleans_up_on_drop() {
    let env = TestEnv::start().await.unwrap();
    println!(
        "TestEnv::start() took {:.2?} (kubeconfig: {})",
        env.startup_time(),
        env.kubeconfig_path().display()
    );
    assert!(
        env.startup_time() < Duration::from_secs(15),
        "start took {:?}",
        env.startup_time()
    );
    let client = env.client().await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, kfp_testenv::KUBERNETES_VERSION);
    let kubeconfig = std::fs::read_to_string(env.kubeconfig_path()).unwrap();
    assert!(kubeconfig.contains(env.server_url()), "{kubeconfig}");

    let (pids, dir) = (env.process_ids(), env.dir().to_path_buf());
    assert!(pids.iter().all(|p| alive(*p)));
    drop(client);
    drop(env);
    wait_until_gone(&pids, &dir).await;
}

#[tokio::test]
async fn each_test_gets_a_fresh_labelled_namespace() {
    let env = TestEnv::shared().await.unwrap();
    let (a, b) = (env.namespace().await.unwrap(), env.namespace().await.unwrap());
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("kfp-test-"), "{a}");
    let namespaces: Api<Namespace> = Api::all(env.client().await.unwrap());
    let found = namespaces.get(a.name()).await.unwrap();
    assert_eq!(found.metadata.labels.unwrap()[TEST_NAMESPACE_LABEL], "true");
}

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn a_second_identity_gets_only_what_rbac_grants() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let admin = env.client().await.unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), ns.name())
        .create(&PostParams::default(), &config_map("visible"))
        .await
        .unwrap();

    let alice = env
        .client_for("alice", &["kfp-test-readers", "team-b"])
        .await
        .unwrap();
    // Authentication is real: the API server knows who is asking.
    let review = Api::<SelfSubjectReview>::all(alice.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = review.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("alice"));
    let groups = user.groups.unwrap();
    for group in ["kfp-test-readers", "team-b", "system:authenticated"] {
        assert!(groups.iter().any(|g| g == group), "{groups:?}");
    }

    // Authorization is real: nothing granted, so 403 Forbidden.
    let alice_config_maps: Api<ConfigMap> = Api::namespaced(alice, ns.name());
    match alice_config_maps.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }

    // Granting read access to the group makes the same request succeed.
    let roles: Api<Role> = Api::namespaced(admin.clone(), ns.name());
    let role = Role {
        metadata: ObjectMeta {
            name: Some("read-config-maps".to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_string()]),
            verbs: vec!["get".to_string(), "list".to_string()],
            ..PolicyRule::default()
        }]),
    };
    roles.create(&PostParams::default(), &role).await.unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("readers".to_string()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "Role".to_string(),
            name: "read-config-maps".to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "Group".to_string(),
            name: "kfp-test-readers".to_string(),
            api_group: Some("rbac.authorization.k8s.io".to_string()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, ns.name())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let listed = wait_for("alice to be allowed to list config maps", TIMEOUT, || async {
        alice_config_maps.list(&ListParams::default()).await.map(Some)
    })
    .await
    .unwrap();
    assert!(
        listed
            .items
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("visible"))
    );
    // Read access only.
    match alice_config_maps
        .create(&PostParams::default(), &config_map("nope"))
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn service_account_tokens_authenticate() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let robot = env.service_account_client(ns.name(), "robot").await.unwrap();
    let review = Api::<SelfSubjectReview>::all(robot.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let username = review.status.unwrap().user_info.unwrap().username.unwrap();
    assert_eq!(username, format!("system:serviceaccount:{}:robot", ns.name()));
    match Api::<ConfigMap>::namespaced(robot, ns.name())
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_multi_document_file_is_applied_server_side_with_the_given_field_manager() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: '1'\n---\n\
              apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: nothing\nrules: []\n",
        )
        .unwrap();
    let options = ApplyOptions::in_namespace(ns.name()).field_manager("kfp-test-manager");
    let applied = apply_yaml_file(&client, &path, &options).await.unwrap();
    assert_eq!(applied.len(), 2);
    // Applying again is a no-op, not a conflict.
    apply_yaml_file(&client, &path, &options).await.unwrap();

    let stored = Api::<ConfigMap>::namespaced(client, ns.name())
        .get("settings")
        .await
        .unwrap();
    assert_eq!(stored.data.unwrap()["a"], "1");
    let managers = stored.metadata.managed_fields.unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("kfp-test-manager")
                && m.operation.as_deref() == Some("Apply")),
        "{managers:?}"
    );
}

const HOLD_ENV_VAR: &str = "KFP_TESTENV_HOLD_FOR_WATCHDOG_TEST";

/// Helper of the next test, run in a child process: starts the shared env, prints its process ids and
/// folder, and waits to be killed. In a normal run it does nothing.
#[tokio::test]
async fn hold_a_control_plane_until_killed() {
    if std::env::var_os(HOLD_ENV_VAR).is_none() {
        return;
    }
    let env = TestEnv::shared().await.unwrap();
    let pids: Vec<String> = env.process_ids().iter().map(u32::to_string).collect();
    println!("HOLDING {} {}", env.dir().display(), pids.join(" "));
    std::io::stdout().flush().unwrap();
    std::future::pending::<()>().await;
}

/// `name` as this test binary lists it: behind its module path, less the crate (`control_plane::name`), since the
/// tests are modules of a few binaries (docs/development.md).
fn test_name(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    }
}

#[tokio::test]
async fn the_shared_control_plane_ends_when_the_test_binary_is_killed() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test_name("hold_a_control_plane_until_killed").as_str(),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV_VAR, "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let holding = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints `test <name> ... ` before the test's own output, on the same line.
            if let Some((_, rest)) = line.split_once("HOLDING ") {
                return rest.to_string();
            }
        }
        panic!("the child test binary exited without starting a control plane");
    })
    .await
    .expect("the child test binary did not start a control plane within 120 s");
    let mut parts = holding.split_whitespace();
    let dir = PathBuf::from(parts.next().unwrap());
    let pids: Vec<u32> = parts.map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| alive(*p)) && dir.exists());

    // SIGKILL: no destructor runs in the child; only the watchdog can clean up.
    child.kill().await.unwrap();
    wait_until_gone(&pids, &dir).await;
}

#[tokio::test]
async fn watches_deliver_events_also_as_streaming_lists() {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{WatchEvent, WatchParams};

    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client().await.unwrap(), ns.name());
    config_maps
        .create(&PostParams::default(), &config_map("before"))
        .await
        .unwrap();

    // A plain watch from the list's resource version sees a later creation.
    let version = config_maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = config_maps
        .watch(&WatchParams::default().timeout(30), &version)
        .await
        .unwrap()
        .boxed();
    config_maps
        .create(&PostParams::default(), &config_map("after"))
        .await
        .unwrap();
    let added = tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let WatchEvent::Added(cm) = event {
                return cm.metadata.name.unwrap();
            }
        }
        panic!("the watch ended without an Added event");
    })
    .await
    .expect("no Added event within 30 s");
    assert_eq!(added, "after");

    // A streaming list (sendInitialEvents) replays the existing objects, then bookmarks their end.
    let mut events = config_maps
        .watch(&WatchParams::streaming_lists().timeout(30), "")
        .await
        .unwrap()
        .boxed();
    let replayed = tokio::time::timeout(TIMEOUT, async {
        let mut names = Vec::new();
        while let Some(event) = events.try_next().await.unwrap() {
            match event {
                WatchEvent::Added(cm) => names.push(cm.metadata.name.unwrap()),
                WatchEvent::Bookmark(b)
                    if b.metadata.annotations.contains_key("k8s.io/initial-events-end") =>
                {
                    return names;
                }
                WatchEvent::Error(e) => panic!("the streaming list failed: {e:?}"),
                _ => {}
            }
        }
        panic!("the streaming list ended without its initial-events-end bookmark");
    })
    .await
    .expect("no initial-events-end bookmark within 30 s");
    let mut replayed = replayed;
    replayed.sort();
    assert_eq!(replayed, ["after", "before"]);
}
