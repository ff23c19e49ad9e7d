//! [`KfpApiServer`]: the real Kubeflow Pipelines API server (v2, 2.0.5 as built by
//! `scripts/kfp-apiserver/build.sh`) on loopback, with the MariaDB and S3 server it needs, against a [`TestEnv`].
//!
//! What runs, each in the server's own temporary folder and on its own free port of 127.0.0.1:
//! * **MariaDB** (Debian's `mariadb-server`: `mariadb-install-db`, then `mariadbd --bind-address=127.0.0.1
//!   --skip-grant-tables`, its socket in the folder): KFP's database.
//! * **gofakes3** (in-memory): the S3 object store KFP keeps pipeline packages in, in place of MinIO.
//! * **KFP's `apiserver`**, reading a `config.json` that names both, with in-cluster Kubernetes credentials for
//!   the [`TestEnv`]'s kube-apiserver (a ServiceAccount token bound to `cluster-admin`). client-go reads those
//!   from the fixed path `/var/run/secrets/kubernetes.io/serviceaccount/`, so the server runs in a mount namespace
//!   of its own (`unshare --mount`; as another user than root with `--user --map-root-user`) where `/run` is a
//!   folder of ours: nothing on the host is written. The same namespace gets an `/etc/hosts` of ours, because the
//!   server's REST gateway dials its own gRPC port at `"localhost" + <the gRPC listen address>`: the gRPC port
//!   listens on `127.0.0.1:<port>`, and `localhost127.0.0.1` is made to resolve to 127.0.0.1, so that no port
//!   listens beyond loopback.
//!
//! The Argo `Workflow` and KFP `ScheduledWorkflow` CRDs are installed in the [`TestEnv`] (runs create Workflows,
//! recurring runs ScheduledWorkflows), in the namespace KFP runs in (`POD_NAMESPACE`, a fresh one per server).
//! Runs do not progress: there is no Argo controller, driver, launcher or ML Metadata.
//!
//! Dropping the [`KfpApiServer`] kills the three processes and removes the folder; a watchdog does the same when
//! the test binary dies without running destructors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::env::{TestEnv, log_tails};
use crate::error::{Error, Result};
use crate::process::{self, Process, Watchdog};

/// The script that builds the server's files (the API server, gofakes3, the ScheduledWorkflow CRD).
pub const BUILD_SCRIPT: &str = "scripts/kfp-apiserver/build.sh";
/// The environment variable naming a folder with those files, instead of the cache folder.
pub const ASSETS_ENV: &str = "KFP_APISERVER_ASSETS";
/// The bucket KFP keeps pipeline packages in.
const BUCKET: &str = "mlpipeline";
/// How long [`KfpApiServer::start`] waits for each component.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts at starting, for the rare case that a free port was taken between choosing and binding it.
const START_ATTEMPTS: usize = 3;
/// Lines of each log shown when something fails.
const LOG_TAIL_LINES: usize = 40;

/// The files `scripts/kfp-apiserver/build.sh` builds, and Debian's MariaDB programs.
#[derive(Debug, Clone)]
pub struct KfpAssets {
    /// The folder: `$KFP_APISERVER_ASSETS`, or `<cache root>/kfp-apiserver`.
    pub dir: PathBuf,
    /// KFP's `apiserver`.
    pub apiserver: PathBuf,
    /// The S3 server.
    pub gofakes3: PathBuf,
    /// The ScheduledWorkflow CRD of the same KFP version.
    pub scheduled_workflow_crd: PathBuf,
    /// What the folder was built from (its `VERSION` file), e.g. `kfp 2.0.5 github.com/kubeflow/pipelines@...`.
    pub version: String,
    /// `mariadbd`.
    pub mariadbd: PathBuf,
    /// `mariadb-install-db`.
    pub mariadb_install_db: PathBuf,
}

impl KfpAssets {
    /// Finds the files; fails with [`Error::AssetsMissing`] naming what is missing and how to get it.
    pub fn find() -> Result<KfpAssets> {
        let dir = match std::env::var_os(ASSETS_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => crate::assets::cache_dir()
                .and_then(|d| d.parent().map(|root| root.join("kfp-apiserver")))
                .ok_or_else(|| {
                    Error::AssetsMissing(format!(
                        "the KFP API server's folder is unknown: set {ASSETS_ENV}, KFP_TESTENV_CACHE or HOME, and run \
                         `{BUILD_SCRIPT}`"
                    ))
                })?,
        };
        let file = |name: &str| dir.join(name);
        let missing: Vec<&str> = [
            ("apiserver", is_executable(&file("apiserver"))),
            ("gofakes3", is_executable(&file("gofakes3"))),
            (
                "scheduledworkflow-crd.yaml",
                file("scheduledworkflow-crd.yaml").is_file(),
            ),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(Error::AssetsMissing(format!(
                "the KFP API server tier needs {} in {}, which are missing. Run `{BUILD_SCRIPT}` from the \
                 kfp-operator repository (scripts/test.sh does; it builds them with Go into the cache folder and \
                 prints it), or set {ASSETS_ENV} to a folder that holds them.",
                missing.join(", "),
                dir.display()
            )));
        }
        let mariadb = |name: &str| {
            ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| is_executable(p))
                .ok_or_else(|| {
                    Error::AssetsMissing(format!(
                        "`{name}` was not found in /usr/sbin or /usr/bin: the KFP API server tier needs MariaDB. \
                         Install Debian's mariadb-server (`apt-get install mariadb-server`; scripts/test.sh does \
                         it as root)."
                    ))
                })
        };
        Ok(KfpAssets {
            version: std::fs::read_to_string(file("VERSION"))
                .unwrap_or_default()
                .trim()
                .to_string(),
            apiserver: file("apiserver"),
            gofakes3: file("gofakes3"),
            scheduled_workflow_crd: file("scheduledworkflow-crd.yaml"),
            mariadbd: mariadb("mariadbd")?,
            mariadb_install_db: mariadb("mariadb-install-db")?,
            dir,
        })
    }
}

/// How [`KfpApiServer::start_with`] configures the server.
#[derive(Debug, Clone, Default)]
pub struct KfpOptions {
    /// `MULTIUSER=true`: every request must carry a bearer token (a ServiceAccount token for the audience
    /// `pipelines.kubeflow.org`, checked with a TokenReview and authorized with SubjectAccessReviews against the
    /// [`TestEnv`]); experiments, runs and recurring runs belong to a namespace.
    pub multi_user: bool,
}

/// A running KFP API server and its MariaDB and S3 server; see the [module docs](self).
pub struct KfpApiServer {
    // Field order matters for drop: processes (with the watchdog) go before the folder.
    processes: Mutex<Processes>,
    url: String,
    namespace: String,
    version: String,
    logs: Vec<PathBuf>,
    startup_time: Duration,
    dir: tempfile::TempDir,
}

struct Processes {
    watchdog: Watchdog,
    started: Vec<Process>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        // The watchdog first: it must not act on process ids that are free again after the kills below.
        self.watchdog.disarm();
        for process in self.started.iter_mut().rev() {
            process.kill();
        }
    }
}

impl Processes {
    fn add(&mut self, process: Process) -> Result<()> {
        let pid = process.child.id();
        self.started.push(process);
        self.watchdog.watch(pid)
    }

    fn exited(&mut self) -> Option<String> {
        self.started.iter_mut().find_map(Process::exited)
    }
}

static SHARED: tokio::sync::OnceCell<std::result::Result<KfpApiServer, String>> =
    tokio::sync::OnceCell::const_new();

impl KfpApiServer {
    /// The single-user server shared by all tests of this test binary, against [`TestEnv::shared`], started by the
    /// first caller. Like the shared env it owns only processes and files, so it outlives the test that started
    /// it; the watchdog ends it with the test binary. When starting fails every caller gets the failure.
    pub async fn shared() -> Result<&'static KfpApiServer> {
        let started = SHARED
            .get_or_init(|| async {
                let env = TestEnv::shared().await.map_err(|e| e.to_string())?;
                KfpApiServer::start(env).await.map_err(|e| e.to_string())
            })
            .await;
        started.as_ref().map_err(|e| {
            Error::Invalid(format!(
                "the shared KFP API server of this test binary failed to start: {e}"
            ))
        })
    }

    /// Starts MariaDB, the S3 server and the KFP API server (single-user mode) against `env`, and returns once
    /// `GET /apis/v2beta1/healthz` answers 200.
    pub async fn start(env: &TestEnv) -> Result<KfpApiServer> {
        KfpApiServer::start_with(env, KfpOptions::default()).await
    }

    /// [`KfpApiServer::start`] with `options`.
    pub async fn start_with(env: &TestEnv, options: KfpOptions) -> Result<KfpApiServer> {
        let assets = KfpAssets::find()?;
        let mut attempt = 1;
        loop {
            match KfpApiServer::start_once(env, &options, &assets).await {
                // A free port was taken between choosing and binding it.
                Err(Error::Start { logs, .. })
                    if attempt < START_ATTEMPTS
                        && logs.to_ascii_lowercase().contains("address already in use") =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once(env: &TestEnv, options: &KfpOptions, assets: &KfpAssets) -> Result<KfpApiServer> {
        let started_at = Instant::now();
        env.install_argo_crds().await?;
        env.install_crds(&[&assets.scheduled_workflow_crd]).await?;
        let client = env.client().await?;
        let namespace = crate::namespace::create_namespace(&client, "kfp-apiserver").await?;
        let account = "ml-pipeline";
        let token = env.service_account_token(&namespace, account, &[]).await?;
        let bindings: Api<ClusterRoleBinding> = Api::all(client);
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("{namespace}-{account}")),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "cluster-admin".into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account.into(),
                namespace: Some(namespace.clone()),
                ..Default::default()
            }]),
        };
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .map_err(|e| Error::kube(format!("binding {namespace}/{account} to cluster-admin"), e))?;

        let dir = tempfile::Builder::new()
            .prefix("kfp-apiserver-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary folder for the KFP API server", e))?;
        let root = dir.path().to_path_buf();
        let logs = ["mariadb.log", "gofakes3.log", "kfp-apiserver.log"].map(|l| root.join(l));
        let [mariadb_log, s3_log, kfp_log] = logs.clone();
        let mut processes = Processes {
            watchdog: Watchdog::spawn(&root)?,
            started: Vec::new(),
        };
        let fail = |processes: &mut Processes, message: String| {
            let exited = processes.exited().map(|e| format!(" ({e})")).unwrap_or_default();
            Error::Start {
                message: format!("{message}{exited}"),
                logs: log_tails(&logs, LOG_TAIL_LINES),
            }
        };
        let ports = process::free_ports(4)?;
        let (db_port, s3_port, rpc_port, http_port) = (ports[0], ports[1], ports[2], ports[3]);

        // MariaDB.
        let datadir = root.join("mariadb");
        let as_root = rustix::process::geteuid().is_root();
        let user_args: Vec<String> = if as_root {
            vec!["--user=root".into()]
        } else {
            vec![]
        };
        let install = Command::new(&assets.mariadb_install_db)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .args(&user_args)
            .args(["--skip-test-db", "--auth-root-authentication-method=normal"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("running {}", assets.mariadb_install_db.display()), e))?;
        if !install.status.success() {
            return Err(Error::Start {
                message: format!("mariadb-install-db failed ({})", install.status),
                logs: format!(
                    "{}{}",
                    String::from_utf8_lossy(&install.stdout),
                    String::from_utf8_lossy(&install.stderr)
                ),
            });
        }
        let mut mariadb_args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--socket={}", root.join("mariadb.sock").display()),
            format!("--pid-file={}", root.join("mariadb.pid").display()),
            format!("--port={db_port}"),
            "--bind-address=127.0.0.1".into(),
            // No users, no passwords: a throwaway database on loopback.
            "--skip-grant-tables".into(),
            "--skip-name-resolve".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-flush-log-at-trx-commit=0".into(),
        ];
        mariadb_args.extend(user_args);
        processes.add(Process::spawn(
            "mariadbd",
            &assets.mariadbd,
            &mariadb_args,
            &mariadb_log,
        )?)?;

        // The S3 server.
        let s3_args = [
            "-backend=memory".to_string(),
            format!("-host=127.0.0.1:{s3_port}"),
            format!("-initialbucket={BUCKET}"),
        ];
        processes.add(Process::spawn("gofakes3", &assets.gofakes3, &s3_args, &s3_log)?)?;
        for (what, port) in [("MariaDB", db_port), ("gofakes3", s3_port)] {
            if let Err(e) = wait_for_port(&mut processes, port).await {
                return Err(fail(
                    &mut processes,
                    format!("{what} did not listen on 127.0.0.1:{port}: {e}"),
                ));
            }
        }

        // The KFP API server's files: config, samples, in-cluster credentials, hosts.
        let write = |path: PathBuf, contents: &str| -> Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
            }
            std::fs::write(&path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        let config = json!({
            "DBConfig": {
                "MySQLConfig": {
                    "Host": "127.0.0.1",
                    "Port": db_port.to_string(),
                    "User": "root",
                    "Password": "",
                    "DBName": "mlpipeline",
                    "GroupConcatMaxLen": "4194304"
                },
                "ConMaxLifeTime": "120s"
            },
            "ObjectStoreConfig": {
                "Host": "127.0.0.1",
                "Port": s3_port.to_string(),
                "Secure": false,
                // gofakes3 checks no signatures: these are not credentials.
                "AccessKey": "kfp-testenv",
                "SecretAccessKey": "kfp-testenv",
                "BucketName": BUCKET,
                "PipelinePath": "pipelines"
            },
            "DBDriverName": "mysql",
            "ARCHIVE_CONFIG_LOG_FILE_NAME": "main.log",
            "ARCHIVE_CONFIG_LOG_PATH_PREFIX": "/artifacts",
            "InitConnectionTimeout": "60s",
            "DEFAULTPIPELINERUNNERSERVICEACCOUNT": "pipeline-runner",
            "CacheEnabled": "true",
            "CRON_SCHEDULE_TIMEZONE": "UTC",
            "CACHE_IMAGE": "busybox",
            "CACHE_NODE_RESTRICTIONS": "false"
        });
        write(root.join("config/config.json"), &config.to_string())?;
        write(root.join("config/sample_config.json"), "[]")?;
        let secrets = root.join("run/secrets/kubernetes.io/serviceaccount");
        write(secrets.join("token"), &token)?;
        write(secrets.join("ca.crt"), &env.ca_pem())?;
        write(secrets.join("namespace"), &namespace)?;
        write(
            root.join("hosts"),
            "127.0.0.1\tlocalhost localhost127.0.0.1\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        )?;

        let kube_port = env
            .server_url()
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_string();
        // In the mount namespace: our /run (so /var/run/secrets/...) and /etc/hosts, then the server itself.
        const ENTER: &str = "set -e\nmount --bind \"$1/run\" /run\nmount --bind \"$1/hosts\" /etc/hosts\nshift\nexec \"$@\"\n";
        let mut unshare = Command::new("unshare");
        if !as_root {
            unshare.args(["--user", "--map-root-user"]);
        }
        let out = std::fs::File::create(&kfp_log)
            .map_err(|e| Error::io(format!("creating {}", kfp_log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", kfp_log.display()), e))?;
        unshare
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                ENTER,
                "kfp-apiserver",
            ])
            .arg(&root)
            .arg(&assets.apiserver)
            .arg(format!("--config={}", root.join("config").display()))
            .arg(format!(
                "--sampleconfig={}",
                root.join("config/sample_config.json").display()
            ))
            .arg(format!("--rpcPortFlag=127.0.0.1:{rpc_port}"))
            .arg(format!("--httpPortFlag=127.0.0.1:{http_port}"))
            .arg("--logtostderr=true")
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", &kube_port)
            .env("POD_NAMESPACE", &namespace)
            .env("MULTIUSER", options.multi_user.to_string())
            .env("ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_HOST", "127.0.0.1")
            .env("ML_PIPELINE_VISUALIZATIONSERVER_SERVICE_PORT", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = unshare
            .spawn()
            .map_err(|e| Error::io("starting the KFP API server (unshare)", e))?;
        processes.add(Process {
            name: "kfp-apiserver",
            child,
        })?;

        let url = format!("http://127.0.0.1:{http_port}");
        let deadline = Instant::now() + START_TIMEOUT;
        let last = loop {
            if let Some(exited) = processes.exited() {
                return Err(fail(
                    &mut processes,
                    format!("the KFP API server did not start: {exited}"),
                ));
            }
            let last = match http_get(http_port, "/apis/v2beta1/healthz").await {
                Ok((200, _)) => break None,
                Ok((status, body)) => format!("healthz answered {status}: {body}"),
                Err(e) => format!("healthz: {e}"),
            };
            if Instant::now() > deadline {
                break Some(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Some(last) = last {
            return Err(fail(
                &mut processes,
                format!("the KFP API server did not answer within {START_TIMEOUT:?}; {last}"),
            ));
        }
        // healthz is the REST side's own; the API behind it is the gRPC server, started concurrently.
        if let Err(e) = wait_for_port(&mut processes, rpc_port).await {
            return Err(fail(
                &mut processes,
                format!("the KFP API server's gRPC port 127.0.0.1:{rpc_port} did not listen: {e}"),
            ));
        }
        // The REST gateway dialled the gRPC port before it listened and retries with gRPC's backoff: until it has
        // reconnected, API calls answer 503 "connection refused". Wait for one to go through.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match http_get(http_port, "/apis/v2beta1/pipelines?page_size=1").await {
                Ok((200, _)) => break,
                Ok((status, body)) => format!("listing pipelines answered {status}: {body}"),
                Err(e) => format!("listing pipelines: {e}"),
            };
            if Instant::now() > deadline {
                return Err(fail(
                    &mut processes,
                    format!("the KFP API server's REST gateway did not reach its gRPC server: {last}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(KfpApiServer {
            processes: Mutex::new(processes),
            url,
            namespace,
            version: assets.version.clone(),
            logs: logs.to_vec(),
            startup_time: started_at.elapsed(),
            dir,
        })
    }

    /// The REST URL, `http://127.0.0.1:<port>` (the v2beta1 API is under `/apis/v2beta1/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Kubernetes namespace KFP runs in (`POD_NAMESPACE`): where its Workflows and ScheduledWorkflows are made
    /// in single-user mode.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// What the server was built from (the `VERSION` file of the build script).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The last `lines` lines of the MariaDB, gofakes3 and KFP API server logs.
    pub fn log_tails(&self, lines: usize) -> String {
        log_tails(&self.logs, lines)
    }

    /// The process ids of MariaDB, gofakes3 and the KFP API server.
    pub fn process_ids(&self) -> Vec<u32> {
        let processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        processes.started.iter().map(|p| p.child.id()).collect()
    }

    /// How long [`KfpApiServer::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// The temporary folder (configuration, database, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for KfpApiServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "kfp-testenv: a test panicked; KFP API server logs:\n{}",
                self.log_tails(LOG_TAIL_LINES)
            );
        }
    }
}

impl std::fmt::Debug for KfpApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KfpApiServer")
            .field("url", &self.url)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Waits until 127.0.0.1:`port` accepts connections, or a process exits.
async fn wait_for_port(processes: &mut Processes, port: u16) -> std::result::Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(exited) = processes.exited() {
            return Err(exited);
        }
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A plain HTTP/1.0 GET on loopback: the status code and the body.
async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 5s"))??;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
