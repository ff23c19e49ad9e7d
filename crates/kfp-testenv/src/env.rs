//! [`TestEnv`]: one etcd and one kube-apiserver on loopback.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use kube::{Client, Config};

use crate::assets::Assets;
use crate::error::{Error, Result};
use crate::namespace::TestNamespace;
use crate::pki::{self, Pki};
use crate::process::{self, Process, Watchdog};

/// How long [`TestEnv::start`] waits for `/readyz` before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Attempts at starting, for the rare case that a free port was taken between choosing and binding it.
const START_ATTEMPTS: usize = 3;
/// The user name of the admin identity (group `system:masters`).
pub const ADMIN_USER: &str = "kfp-testenv-admin";
/// The common name of the front-proxy certificate that vouches for the users of [`TestEnv::client_for`].
const FRONT_PROXY_USER: &str = "kfp-testenv-front-proxy";
/// Lines of each log shown when something fails.
const LOG_TAIL_LINES: usize = 40;

/// A running control plane: etcd and kube-apiserver on free loopback ports, in a fresh temporary
/// folder, serving TLS with a generated CA, with real authentication (client certificates,
/// ServiceAccount tokens) and RBAC authorization.
///
/// There is no controller manager or scheduler: nothing garbage-collects, nothing deletes namespaces,
/// nothing creates Pods for Deployments, and no default ServiceAccount appears in new namespaces (the
/// `ServiceAccount` admission plugin is off, so Pods can be created without one).
///
/// Dropping a `TestEnv` (also while a test panics) kills both processes and removes the folder. The
/// env returned by [`TestEnv::shared`] is never dropped: a watchdog process ends both and removes the
/// folder when the test binary exits.
///
/// Clients ([`TestEnv::client`] and friends) are cheap to make and belong to the Tokio runtime they are
/// made in: make them inside each test, do not keep them across tests.
///
/// ```no_run
/// # async fn demo() -> Result<(), kfp_testenv::Error> {
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::Api;
///
/// let env = kfp_testenv::TestEnv::shared().await?;
/// let client = env.client().await?;
/// let ns = env.namespace().await?;
/// let config_maps: Api<ConfigMap> = Api::namespaced(client, ns.name());
/// # Ok(()) }
/// ```
pub struct TestEnv {
    // Field order matters for drop: processes (with the watchdog) go before the folder.
    processes: Mutex<Processes>,
    pki: Pki,
    server: String,
    kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
    etcd_log: PathBuf,
    apiserver_log: PathBuf,
    front_proxy_cert: PathBuf,
    front_proxy_key: PathBuf,
    startup_time: Duration,
    argo_crds: tokio::sync::OnceCell<std::result::Result<Vec<String>, String>>,
    dir: tempfile::TempDir,
}

struct Processes {
    watchdog: Watchdog,
    etcd: Process,
    apiserver: Process,
}

impl Drop for Processes {
    fn drop(&mut self) {
        // The watchdog first: it must not act on process ids that are free again after the kills below.
        self.watchdog.disarm();
        self.apiserver.kill();
        self.etcd.kill();
    }
}

/// How [`TestEnv::start_with`] starts the control plane beyond its defaults.
///
/// ```no_run
/// # async fn demo() -> Result<(), kfp_testenv::Error> {
/// // An API server that writes an audit log.
/// let options = kfp_testenv::StartOptions::default().apiserver_args([
///     "--audit-policy-file=/tmp/policy.yaml",
///     "--audit-log-path=/tmp/audit.log",
/// ]);
/// let env = kfp_testenv::TestEnv::start_with(options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Extra kube-apiserver flags, appended after the defaults (a repeated flag wins over its default), e.g. an
    /// audit policy or admission plugins.
    pub apiserver_args: Vec<String>,
}

impl StartOptions {
    /// Adds kube-apiserver flags.
    pub fn apiserver_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.apiserver_args.extend(args.into_iter().map(Into::into));
        self
    }
}

static SHARED: tokio::sync::OnceCell<std::result::Result<TestEnv, String>> =
    tokio::sync::OnceCell::const_new();

impl TestEnv {
    /// The control plane shared by all tests of this test binary, started by the first caller.
    ///
    /// Each `#[tokio::test]` has its own runtime; the shared env owns no runtime resources (only
    /// processes and files), so it outlives the test that started it. When starting fails, every
    /// caller gets the failure, so every test that needs it fails (never skips).
    pub async fn shared() -> Result<&'static TestEnv> {
        let started = SHARED
            .get_or_init(|| async { TestEnv::start().await.map_err(|e| e.to_string()) })
            .await;
        started.as_ref().map_err(|e| Error::Shared(e.clone()))
    }

    /// Starts a new control plane and waits until `/readyz` answers `ok`.
    ///
    /// Finds the binaries with [`Assets::find`]. On failure the error includes the tails of the etcd
    /// and kube-apiserver logs.
    pub async fn start() -> Result<TestEnv> {
        TestEnv::start_with(StartOptions::default()).await
    }

    /// Starts a new control plane with `options` (for example extra kube-apiserver flags) and waits until
    /// `/readyz` answers `ok`, like [`TestEnv::start`].
    pub async fn start_with(options: StartOptions) -> Result<TestEnv> {
        let assets = Assets::find()?;
        install_crypto_provider();
        let mut attempt = 1;
        loop {
            match TestEnv::start_once(&assets, &options).await {
                Err(Error::Start { message, logs })
                    if attempt < START_ATTEMPTS && logs.contains("address already in use") =>
                {
                    let _ = (message, logs);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(assets: &Assets, options: &StartOptions) -> Result<TestEnv> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("kfp-testenv-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary folder for the control plane", e))?;
        let root = dir.path().to_path_buf();
        let write = |name: &str, contents: &str| -> Result<PathBuf> {
            let path = root.join(name);
            std::fs::write(&path, contents)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            Ok(path)
        };

        let pki = Pki::new()?;
        let ca = write("ca.crt", &pki.ca_pem())?;
        let serving = pki.serving()?;
        let serving_cert = write("apiserver.crt", &serving.cert_pem)?;
        let serving_key = write("apiserver.key", &serving.key_pem)?;
        let admin = pki.client(ADMIN_USER, Some("system:masters"))?;
        let admin_cert = write("admin.crt", &admin.cert_pem)?;
        let admin_key = write("admin.key", &admin.key_pem)?;
        let front_proxy = pki.client(FRONT_PROXY_USER, None)?;
        let front_proxy_cert = write("front-proxy.crt", &front_proxy.cert_pem)?;
        let front_proxy_key = write("front-proxy.key", &front_proxy.key_pem)?;
        let (sa_private, sa_public) = pki::service_account_key()?;
        let sa_key = write("service-account.key", &sa_private)?;
        let sa_pub = write("service-account.pub", &sa_public)?;

        let ports = process::free_ports(3)?;
        let (etcd_client, etcd_peer, secure_port) = (ports[0], ports[1], ports[2]);
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let server = format!("https://127.0.0.1:{secure_port}");

        let mut watchdog = Watchdog::spawn(&root)?;
        let etcd_log = root.join("etcd.log");
        let etcd = Process::spawn(
            "etcd",
            &assets.etcd,
            &[
                "--name=default".to_string(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--initial-cluster-state=new".to_string(),
                "--log-level=warn".to_string(),
                // Throwaway data: skip fsync (etcd >= 3.5; older etcd refuses the flag).
                "--unsafe-no-fsync".to_string(),
            ],
            &etcd_log,
        )?;
        let etcd_pid = etcd.child.id();
        // From here on, errors drop `Processes`, which kills what was started.
        let apiserver_log = root.join("kube-apiserver.log");
        let mut apiserver_args = apiserver_args(
            &root,
            &etcd_url,
            secure_port,
            [&ca, &serving_cert, &serving_key, &sa_key, &sa_pub],
        );
        apiserver_args.extend(options.apiserver_args.iter().cloned());
        let mut processes = match Process::spawn(
            "kube-apiserver",
            &assets.kube_apiserver,
            &apiserver_args,
            &apiserver_log,
        ) {
            Ok(apiserver) => Processes {
                watchdog,
                etcd,
                apiserver,
            },
            Err(e) => {
                let mut etcd = etcd;
                watchdog.disarm();
                etcd.kill();
                return Err(e);
            }
        };
        for pid in [etcd_pid, processes.apiserver.child.id()] {
            processes.watchdog.watch(pid)?;
        }

        let kubeconfig = kubeconfig(&server, &ca, &admin_cert, &admin_key);
        let kubeconfig_path = root.join("kubeconfig");
        let json = serde_json::to_string_pretty(&kubeconfig)
            .map_err(|e| Error::Invalid(format!("cannot serialize the kubeconfig: {e}")))?;
        write("kubeconfig", &json)?;

        let mut env = TestEnv {
            processes: Mutex::new(processes),
            pki,
            server,
            kubeconfig_path,
            kubeconfig,
            etcd_log,
            apiserver_log,
            front_proxy_cert,
            front_proxy_key,
            startup_time: Duration::ZERO,
            argo_crds: tokio::sync::OnceCell::new(),
            dir,
        };
        env.wait_ready(started).await?;
        env.startup_time = started.elapsed();
        Ok(env)
    }

    async fn wait_ready(&self, started: Instant) -> Result<()> {
        let client = self.client().await?;
        loop {
            if let Some(exited) = self.exited_process() {
                return Err(self.start_error(exited));
            }
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| Error::Invalid(format!("cannot build the /readyz request: {e}")))?;
            let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await
            {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => format!("/readyz answered {body:?}"),
                Ok(Err(e)) => format!("/readyz failed: {e}"),
                Err(_) => "/readyz did not answer within 5s".to_string(),
            };
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(format!(
                    "kube-apiserver was not ready after {START_TIMEOUT:?}; {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn exited_process(&self) -> Option<String> {
        let mut processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        let Processes { etcd, apiserver, .. } = &mut *processes;
        etcd.exited().or_else(|| apiserver.exited())
    }

    fn start_error(&self, message: String) -> Error {
        Error::Start {
            message,
            logs: self.log_tails(LOG_TAIL_LINES),
        }
    }

    /// A client authenticated as the admin user (`kfp-testenv-admin`, group `system:masters`: every
    /// permission). Make one per test: it belongs to the current Tokio runtime.
    pub async fn client(&self) -> Result<Client> {
        Client::try_from(self.admin_config().await?).map_err(|e| Error::kube("building the admin client", e))
    }

    /// The `kube::Config` of the admin user, to build a client with other settings.
    pub async fn admin_config(&self) -> Result<Config> {
        Config::from_custom_kubeconfig(self.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Invalid(format!("the generated kubeconfig is not usable: {e}")))
    }

    /// A client authenticated as `user` in `groups` (plus `system:authenticated`), with no permissions
    /// beyond what RBAC grants them: use it to test least-privilege roles.
    ///
    /// Authentication is real: the client presents a certificate of a front proxy that the API server
    /// trusts (`--requestheader-*` flags, as for aggregated API servers) and names the user and groups in
    /// `X-Remote-User`/`X-Remote-Group` headers, which allows any number of groups.
    pub async fn client_for(&self, user: &str, groups: &[&str]) -> Result<Client> {
        let mut config = self
            .config_with(AuthInfo {
                client_certificate: Some(self.front_proxy_cert.display().to_string()),
                client_key: Some(self.front_proxy_key.display().to_string()),
                ..AuthInfo::default()
            })
            .await?;
        let header = |name: &'static str, value: &str| -> Result<(HeaderName, HeaderValue)> {
            let value = HeaderValue::from_str(value)
                .map_err(|e| Error::Invalid(format!("{value:?} cannot be sent as {name}: {e}")))?;
            Ok((HeaderName::from_static(name), value))
        };
        config.headers.push(header("x-remote-user", user)?);
        for group in groups {
            config.headers.push(header("x-remote-group", group)?);
        }
        Client::try_from(config).map_err(|e| Error::kube(format!("building a client for user {user}"), e))
    }

    /// A client that authenticates with a bearer token, e.g. a ServiceAccount token.
    pub async fn client_with_token(&self, token: &str) -> Result<Client> {
        let config = self.config_with(token_auth(token)?).await?;
        Client::try_from(config).map_err(|e| Error::kube("building a client with a bearer token", e))
    }

    /// A client authenticated as the ServiceAccount `namespace/name` (created if missing) with a fresh
    /// token from the TokenRequest API: user `system:serviceaccount:<namespace>:<name>`.
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let token = self.service_account_token(namespace, name, &[]).await?;
        self.client_with_token(&token).await
    }

    /// A fresh token of the ServiceAccount `namespace/name` (created if missing) from the TokenRequest API, issued
    /// for `audiences` (empty: the API server's own), valid for an hour: what a projected token with that
    /// audience holds, e.g. to test a server that checks tokens with a TokenReview.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
    ) -> Result<String> {
        let admin = self.client().await?;
        let accounts: Api<ServiceAccount> = Api::namespaced(admin, namespace);
        let account = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match accounts.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("creating ServiceAccount {namespace}/{name}"),
                    e,
                ));
            }
        }
        let request = TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                audiences: audiences.iter().map(|a| a.to_string()).collect(),
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..TokenRequest::default()
        };
        accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(|e| {
                Error::kube(
                    format!("requesting a token for ServiceAccount {namespace}/{name}"),
                    e,
                )
            })?
            .status
            .map(|s| s.token)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "the TokenRequest for {namespace}/{name} returned no token"
                ))
            })
    }

    /// Writes a kubeconfig file at `path` that reaches this API server with the bearer `token` (the server's CA
    /// is referenced by path, so the file is valid while the env runs).
    pub fn write_kubeconfig_with_token(&self, token: &str, path: &Path) -> Result<()> {
        let kubeconfig = self.kubeconfig_with(token_auth(token)?);
        let json = serde_json::to_string_pretty(&kubeconfig)
            .map_err(|e| Error::Invalid(format!("cannot serialize the kubeconfig: {e}")))?;
        std::fs::write(path, json).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// The admin kubeconfig with every user's credentials replaced by `auth`.
    fn kubeconfig_with(&self, auth: AuthInfo) -> Kubeconfig {
        let mut kubeconfig = self.kubeconfig.clone();
        for named in &mut kubeconfig.auth_infos {
            named.auth_info = Some(auth.clone());
        }
        kubeconfig
    }

    async fn config_with(&self, auth: AuthInfo) -> Result<Config> {
        Config::from_custom_kubeconfig(self.kubeconfig_with(auth), &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Invalid(format!("the generated kubeconfig is not usable: {e}")))
    }

    /// Creates a fresh namespace with a unique generated name (`kfp-test-xxxxx`) for one test.
    pub async fn namespace(&self) -> Result<TestNamespace> {
        let client = self.client().await?;
        let name = crate::namespace::create_namespace(&client, "kfp-test").await?;
        Ok(TestNamespace::new(
            name,
            vec![self.etcd_log.clone(), self.apiserver_log.clone()],
        ))
    }

    /// Installs the CRDs in the YAML files or folders `paths` (see [`crate::install_crds`]) and waits
    /// until they are established and served.
    pub async fn install_crds<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Vec<String>> {
        crate::crds::install_crds(&self.client().await?, paths).await
    }

    /// Installs the Argo Workflows CRDs (`Workflow`, `WorkflowTemplate`, full schemas) from the folder
    /// found by [`crate::assets::argo_crds_dir`], waits until they are established and served, and
    /// returns their names.
    ///
    /// Installing them takes several seconds (the API server digests 4 MB of schema), so only the first
    /// call on an env does it; later calls, e.g. from other tests on the shared env, return at once.
    pub async fn install_argo_crds(&self) -> Result<Vec<String>> {
        let installed = self
            .argo_crds
            .get_or_init(|| async {
                let dir = crate::assets::argo_crds_dir().map_err(|e| e.to_string())?;
                self.install_crds(&[dir]).await.map_err(|e| e.to_string())
            })
            .await;
        installed
            .clone()
            .map_err(|e| Error::Invalid(format!("installing the Argo Workflows CRDs failed: {e}")))
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// A kubeconfig file for the admin user: `kubectl --kubeconfig <path> get ns` works while the env runs.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The CA certificate (PEM) that signed the serving certificate and the client certificates.
    pub fn ca_pem(&self) -> String {
        self.pki.ca_pem()
    }

    /// The process ids of kube-apiserver and etcd (a benchmark reads their CPU time from `/proc`).
    pub fn pids(&self) -> (u32, u32) {
        let processes = self
            .processes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (processes.apiserver.child.id(), processes.etcd.child.id())
    }

    /// The temporary folder of this control plane (certificates, etcd data, logs, kubeconfig).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The etcd log file.
    pub fn etcd_log_path(&self) -> &Path {
        &self.etcd_log
    }

    /// The kube-apiserver log file.
    pub fn apiserver_log_path(&self) -> &Path {
        &self.apiserver_log
    }

    /// The last `lines` lines of the etcd and kube-apiserver logs, with headers naming the files.
    pub fn log_tails(&self, lines: usize) -> String {
        log_tails(&[self.etcd_log.clone(), self.apiserver_log.clone()], lines)
    }

    /// The process ids of etcd and kube-apiserver.
    pub fn process_ids(&self) -> Vec<u32> {
        let processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        vec![processes.etcd.child.id(), processes.apiserver.child.id()]
    }

    /// How long [`TestEnv::start`] took, from creating the folder to `/readyz` answering `ok`.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kfp-testenv: a test panicked; control plane logs:\n{}",
                self.log_tails(LOG_TAIL_LINES)
            );
        }
    }
}

impl std::fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEnv")
            .field("server", &self.server)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

pub(crate) fn log_tails(paths: &[PathBuf], lines: usize) -> String {
    paths
        .iter()
        .map(|path| {
            format!(
                "--- last {lines} lines of {} ---\n{}",
                path.display(),
                process::tail(path, lines)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Credentials that send `token` as a bearer token.
fn token_auth(token: &str) -> Result<AuthInfo> {
    serde_json::from_value(serde_json::json!({ "token": token }))
        .map_err(|e| Error::Invalid(format!("cannot use the token: {e}")))
}

/// kube uses rustls; with only `ring` enabled it picks it, but install it explicitly in case another
/// crate in the test binary enables a second provider.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn apiserver_args(root: &Path, etcd_url: &str, secure_port: u16, files: [&PathBuf; 5]) -> Vec<String> {
    let [ca, cert, key, sa_key, sa_pub] = files.map(|p| p.display().to_string());
    vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        format!("--secure-port={secure_port}"),
        format!("--cert-dir={}", root.join("apiserver-certs").display()),
        format!("--tls-cert-file={cert}"),
        format!("--tls-private-key-file={key}"),
        format!("--client-ca-file={ca}"),
        "--authorization-mode=RBAC".to_string(),
        format!("--requestheader-client-ca-file={ca}"),
        format!("--requestheader-allowed-names={FRONT_PROXY_USER}"),
        "--requestheader-username-headers=X-Remote-User".to_string(),
        "--requestheader-group-headers=X-Remote-Group".to_string(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".to_string(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        format!("--service-account-key-file={sa_pub}"),
        format!("--service-account-signing-key-file={sa_key}"),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        "--allow-privileged=true".to_string(),
        // No controller manager creates default ServiceAccounts, so Pods could not be created with it on.
        "--disable-admission-plugins=ServiceAccount".to_string(),
        "--profiling=false".to_string(),
    ]
}

fn kubeconfig(server: &str, ca: &Path, cert: &Path, key: &Path) -> Kubeconfig {
    const NAME: &str = "kfp-testenv";
    Kubeconfig {
        api_version: Some("v1".to_string()),
        kind: Some("Config".to_string()),
        clusters: vec![NamedCluster {
            name: NAME.to_string(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority: Some(ca.display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: ADMIN_USER.to_string(),
            auth_info: Some(AuthInfo {
                client_certificate: Some(cert.display().to_string()),
                client_key: Some(key.display().to_string()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: NAME.to_string(),
            context: Some(Context {
                cluster: NAME.to_string(),
                user: Some(ADMIN_USER.to_string()),
                namespace: Some("default".to_string()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some(NAME.to_string()),
        ..Kubeconfig::default()
    }
}
