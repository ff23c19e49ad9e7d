//! A real `nats-server` on a free loopback port, and a feed running in-process for it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kfp_operator::config::OperatorConfig;
use kfp_operator::health::Readiness;
use kfp_operator::operator::{Shutdown, ShutdownTrigger};
use kfp_operator::telemetry::Metrics;
use kube::Client;
use tokio::process::{Child, Command};

/// A free loopback port (bound and released: a small race that tests accept).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `nats-server` binary: `$NATS_SERVER`, else `nats-server` on PATH (or Debian's `/usr/sbin`).
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "nats-server is not installed: these tests need a real NATS server. Install it with \
             `apt-get install -y nats-server` (Debian, 2.9.x), or point NATS_SERVER at the binary."
        )
    })
}

/// A running `nats-server`, killed when dropped.
pub struct NatsServer {
    pub port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the NATS server is running already");
        let child = Command::new(binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
        self.child = Some(child);
        let port = self.port;
        kfp_testenv::wait_for(
            "nats-server to accept connections",
            Duration::from_secs(20),
            || async move {
                Ok::<_, String>(
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .ok()
                        .map(drop),
                )
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops the server (SIGKILL: like a crash) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// A subscriber on `subject` that reconnects at once when the server comes back.
pub async fn subscribe(url: &str, subject: &str) -> async_nats::Subscriber {
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(20))
        .max_reconnects(None)
        .connect(url)
        .await
        .unwrap();
    let subscriber = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    subscriber
}

/// The next message's JSON body, within `timeout`.
pub async fn next_json(subscriber: &mut async_nats::Subscriber, timeout: Duration) -> serde_json::Value {
    let message = tokio::time::timeout(timeout, subscriber.next())
        .await
        .unwrap_or_else(|_| panic!("no NATS message within {timeout:?}"))
        .expect("the subscription stays open");
    serde_json::from_slice(&message.payload).unwrap()
}

/// The run-completion feed (and its NATS publisher) running in this process, as `kfp-operator run` starts it.
pub struct RunningFeed {
    pub url: String,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub processor: kfp_operator::feed::Processor,
    _trigger: ShutdownTrigger,
}

impl RunningFeed {
    /// Starts the feed of `config` on a free loopback port.
    pub async fn start(client: &Client, mut config: OperatorConfig) -> Self {
        let port = free_port();
        config.spec.run_completion_feed.address = "127.0.0.1".to_string();
        config.spec.run_completion_feed.port = port;
        config.validate().unwrap();
        let metrics = Metrics::shared();
        let readiness = Readiness::new();
        let (trigger, shutdown) = Shutdown::new();
        let processor = kfp_operator::operator::start_feed(&config, client, &metrics, &readiness, &shutdown)
            .await
            .unwrap();
        Self {
            url: format!("http://127.0.0.1:{port}/events"),
            metrics,
            readiness,
            processor,
            _trigger: trigger,
        }
    }

    /// Posts `body` exactly as a Go KFP Operator provider service does and returns the answer's status code. Its
    /// webhook sink POSTs `json.Marshal(RunCompletionEventData)` with resty (`Content-Type: application/json`, no
    /// `Authorization`), and Go's HTTP client writes Host, User-Agent, Content-Length, Content-Type,
    /// Accept-Encoding in that order; the bytes go out as they are on a new connection.
    pub async fn post_as_go_provider_service(&self, body: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = self.url.trim_start_matches("http://").trim_end_matches("/events");
        let request = format!(
            "POST /events HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: go-resty/2.16.5 (https://github.com/go-resty/resty)\r\n\
             Content-Length: {}\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        // The status line is all that is needed; read until it is complete.
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buffer))
                .await
                .expect("the feed answers")
                .unwrap();
            assert!(read > 0, "the feed closed the connection without answering");
            answer.extend_from_slice(&buffer[..read]);
        }
        let line = String::from_utf8_lossy(&answer);
        line.split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {line}"))
    }

    /// How many feed requests were answered `code`.
    /// Also checks that the Go operator's name (`run_completion_feed_requests_total`) counts the same.
    pub fn answered(&self, code: u16) -> u64 {
        let needle = format!("code=\"{code}\"");
        let text = self.metrics.encode();
        let count = |name: &str| -> u64 {
            text.lines()
                .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&needle))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum()
        };
        let ours = count("kfp_operator_run_completion_feed_requests_total");
        assert_eq!(
            count("run_completion_feed_requests_total"),
            ours,
            "the Go operator's metric name counts as ours"
        );
        ours
    }
}

/// A token for ServiceAccount `namespace/name` (created if missing) from the TokenRequest API, for `audiences`
/// (empty: the API server's default audience).
pub async fn service_account_token(namespace: &str, name: &str, audiences: &[&str]) -> String {
    super::env()
        .await
        .service_account_token(namespace, name, audiences)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

impl RunningFeed {
    /// Waits until at least `count` feed requests were answered `code`.
    pub async fn wait_answered(&self, code: u16, count: u64) {
        kfp_testenv::wait_for(format!("{count} feed answer(s) {code}"), super::WAIT, || async {
            Ok::<_, String>((self.answered(code) >= count).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Waits until the NATS publisher is connected (its reported check, `[+]nats connection` in `/readyz?verbose`).
    pub async fn wait_connected(&self) {
        kfp_testenv::wait_for("the NATS publisher to connect", super::WAIT, || async {
            let connected = self.readiness.check(kfp_operator::feed::nats::READINESS_CHECK);
            Ok::<_, String>((connected == Some(true)).then_some(()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}
