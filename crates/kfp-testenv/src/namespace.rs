//! Fresh, uniquely named namespaces, one per test.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::error::{Error, Result};

/// Label put on every namespace made by [`create_namespace`].
pub const TEST_NAMESPACE_LABEL: &str = "kfp-testenv/test-namespace";

/// Creates a namespace named `<prefix>-<random suffix>` (the API server picks the suffix through
/// `generateName`, so names never collide) and returns its name.
pub async fn create_namespace(client: &Client, prefix: &str) -> Result<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: Some([(TEST_NAMESPACE_LABEL.to_string(), "true".to_string())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let created = namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| Error::kube(format!("creating a namespace named {prefix}-*"), e))?;
    created
        .metadata
        .name
        .ok_or_else(|| Error::Invalid("the API server created a namespace without a name".to_string()))
}

/// A namespace made for one test by [`TestEnv::namespace`](crate::TestEnv::namespace).
///
/// It is not deleted afterwards (the test control plane has no namespace controller to finish a
/// deletion). When it is dropped while the test panics, it prints the tails of the control-plane logs,
/// so a failing test shows what the API server said.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    logs: Vec<PathBuf>,
}

impl TestNamespace {
    pub(crate) fn new(name: String, logs: Vec<PathBuf>) -> TestNamespace {
        TestNamespace { name, logs }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl AsRef<str> for TestNamespace {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kfp-testenv: the test using namespace {} panicked; control plane logs:\n{}",
                self.name,
                crate::env::log_tails(&self.logs, 40)
            );
        }
    }
}
