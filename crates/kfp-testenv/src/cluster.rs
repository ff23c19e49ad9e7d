//! Cluster mode: a one-node Kubernetes cluster that runs real pods, with the real Argo workflow-controller, inside
//! a network namespace of its own.
//!
//! [`Cluster::start`] runs the repository's `scripts/cluster/node-up.sh` and `argo-up.sh` (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, containerd, kubelet, workflow-controller, fake-gcs-server as Argo's
//! artifact repository), each in a fresh network namespace and state folder; dropping the [`Cluster`] runs
//! `node-down.sh`, which stops every process and removes every mount, cgroup, the namespace and the folder.
//!
//! Network safety: the namespace has only `lo` and a veth pair whose both ends are inside it, and pods share its
//! network (hostNetwork; a pod without it cannot start). [`Cluster::enter`] moves the calling thread into it, so
//! the test, the threads and processes it starts afterwards (a current-thread Tokio runtime, `helm`, `kubectl`)
//! reach the cluster and nothing outside the namespace.
//!
//! Needs root (network namespaces, mounts), Debian's `containerd runc busybox-static`, and the binaries of
//! `scripts/test-assets.sh` and `scripts/cluster/build-node-assets.sh` (or a folder of your own in
//! `KFP_NODE_ASSETS`). Images are never pulled: import OCI tars with [`Cluster::import_image`].

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::process::last_lines;
use crate::{Error, Result};

/// The node's name (`spec.nodeName` of every pod).
pub const NODE_NAME: &str = "kfp-node";
/// The image node-up.sh imports with busybox's applets (`sh`, `echo`, ...): for pipeline images in tests.
pub const BUSYBOX_IMAGE: &str = "kfp.local/busybox:1.35.0";
/// The namespace of the Argo workflow-controller and its ConfigMap.
pub const ARGO_NAMESPACE: &str = "argo";

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// What [`Cluster::start`] sets up besides the node.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    hostnames: Vec<String>,
}

impl ClusterOptions {
    /// Names every Argo workflow pod resolves to 127.0.0.1 (its `hostAliases`): pods share the node's network and
    /// there is no cluster DNS, so give the names of the Services workflows call (e.g. `provider-stub.my-ns`).
    pub fn workflow_hostnames<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hostnames.extend(names.into_iter().map(Into::into));
        self
    }
}

/// A running one-node cluster; see the [module documentation](self).
pub struct Cluster {
    scripts: PathBuf,
    state: PathBuf,
    netns: String,
}

impl Cluster {
    /// Starts the node and Argo (blocking: 20-40 s). On failure everything started is stopped again and the
    /// error carries the scripts' output and the daemons' log tails.
    pub fn start(options: ClusterOptions) -> Result<Cluster> {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cluster");
        if !scripts.join("node-up.sh").is_file() {
            return Err(Error::AssetsMissing(format!(
                "kfp-testenv's cluster mode runs the repository's scripts/cluster/*.sh, not found at {}",
                scripts.display()
            )));
        }
        if !rustix::process::geteuid().is_root() {
            return Err(Error::AssetsMissing(
                "kfp-testenv's cluster mode needs root: it creates a network namespace, mounts and cgroups"
                    .to_string(),
            ));
        }
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}-{n}", std::process::id());
        let cluster = Cluster {
            scripts,
            state: std::env::temp_dir().join(format!("kfp-cluster-{id}")),
            netns: format!("kfp-cluster-{id}"),
        };
        cluster.script("node-up.sh", &[])?;
        cluster.script(
            "argo-up.sh",
            &[("KFP_NODE_HOSTNAMES", options.hostnames.join(" "))],
        )?;
        Ok(cluster)
    }

    /// Runs one of the scripts with this cluster's state folder and namespace; its output goes into errors.
    fn script(&self, name: &str, env: &[(&str, String)]) -> Result<()> {
        let output = Command::new("bash")
            .arg(self.scripts.join(name))
            .env("KFP_NODE_STATE", &self.state)
            .env("KFP_NODE_NETNS", &self.netns)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|source| Error::Io {
                context: format!("running scripts/cluster/{name}"),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::Start {
            message: format!(
                "scripts/cluster/{name} failed ({}):\n{}\n{}",
                output.status,
                last_lines(&String::from_utf8_lossy(&output.stdout), 20),
                last_lines(&String::from_utf8_lossy(&output.stderr), 40),
            ),
            logs: self.log_tails(30),
        })
    }

    /// Moves the calling thread into the cluster's network namespace. Threads and processes it starts afterwards
    /// are in it too; build the test's Tokio runtime (current-thread) after this call.
    pub fn enter(&self) -> Result<()> {
        let path = self.netns_path();
        let file = File::open(&path).map_err(|source| Error::Io {
            context: format!("opening {}", path.display()),
            source,
        })?;
        // setns(2) changes only the calling thread.
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| Error::Io {
            context: format!("entering network namespace {}", self.netns),
            source: e.into(),
        })
    }

    /// An admin client (client certificate, `system:masters`). Call it on a thread that [entered](Self::enter)
    /// the namespace: the API server listens only there.
    pub async fn client(&self) -> Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig_path())
            .map_err(|e| Error::Invalid(format!("the cluster's kubeconfig is not usable: {e}")))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Invalid(format!("the cluster's kubeconfig is not usable: {e}")))?;
        Client::try_from(config).map_err(|e| Error::kube("building the cluster's admin client", e))
    }

    /// Imports an OCI image-layout tar (`scripts/images.sh`) into the node's containerd, where kubelet finds it.
    pub fn import_image(&self, tar: &Path) -> Result<()> {
        let output = Command::new("ctr")
            .arg("--address")
            .arg(self.state.join("containerd.sock"))
            .args(["-n", "k8s.io", "image", "import"])
            .arg(tar)
            .output()
            .map_err(|source| Error::Io {
                context: "running ctr (apt-get install containerd)".to_string(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "ctr image import {} failed: {}",
                tar.display(),
                last_lines(&String::from_utf8_lossy(&output.stderr), 10)
            )))
        }
    }

    /// The admin kubeconfig (server `https://127.0.0.1:443`, inside the namespace), for `kubectl` and `helm`.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.state.join("admin.kubeconfig")
    }

    /// The network namespace's name (`/run/netns/<name>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }

    /// The state folder: daemon logs in `logs/`, kubelet's pod logs in `pod-logs/`.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The last `lines` lines of every daemon's log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let Ok(entries) = std::fs::read_dir(self.state.join("logs")) else {
            return String::new();
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        crate::env::log_tails(&paths, lines)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.script("node-down.sh", &[]) {
            eprintln!("kfp-testenv: stopping the cluster failed: {e}");
        }
    }
}
