//! Leader election on a real API server: two electors on one Lease, and a leader through an API server outage
//! longer than its Lease.

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kfp_operator::leader::{LeaderElector, LeaderGuard, LeaseConfig};
use kfp_testenv::TestEnv;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::{Instant, timeout};

const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(500);
/// Generous bounds for things that must happen; they only fail a broken implementation.
const PROMPTLY: Duration = Duration::from_secs(10);

fn lease_config(namespace: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        name: "kfp-operator-lock".into(),
        namespace: namespace.into(),
        identity: identity.into(),
        lease_duration: LEASE,
        renew_period: RENEW,
    }
}

async fn lease(client: &Client, namespace: &str) -> LeaseSpec {
    Api::<Lease>::namespaced(client.clone(), namespace)
        .get("kfp-operator-lock")
        .await
        .unwrap()
        .spec
        .unwrap()
}

async fn lead(client: &Client, namespace: &str, identity: &str) -> LeaderGuard {
    let elector = LeaderElector::new(client.clone(), lease_config(namespace, identity));
    timeout(PROMPTLY, elector.acquire())
        .await
        .expect("a free Lease is acquired at once")
        .unwrap();
    let guard = elector.run();
    assert!(guard.is_leading());
    guard
}

async fn wait_until_not_leading(leading: &mut watch::Receiver<bool>, within: Duration) {
    timeout(within, leading.wait_for(|leading| !leading))
        .await
        .expect("the leader stops leading in time")
        .unwrap();
}

#[tokio::test]
async fn one_leader_at_a_time_and_release_hands_over() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();

    let a = lead(&client, ns.name(), "replica-a").await;
    let spec = lease(&client, ns.name()).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(spec.lease_transitions, Some(0));
    assert_eq!(spec.lease_duration_seconds, Some(2));

    // While a renews, b does not get the Lease, for well over a Lease duration.
    let b = LeaderElector::new(client.clone(), lease_config(ns.name(), "replica-b"));
    assert!(
        timeout(LEASE * 2, b.acquire()).await.is_err(),
        "b acquired a Lease that a was renewing"
    );
    assert!(a.is_leading(), "a kept leading");
    let renewed = lease(&client, ns.name()).await;
    assert_eq!(renewed.holder_identity.as_deref(), Some("replica-a"));
    assert!(
        renewed.renew_time.unwrap().0 > spec.renew_time.unwrap().0,
        "a renewed"
    );

    // a releases: b takes over at its next poll, well before the Lease would have expired.
    let mut a_leading = a.leading();
    a.release().await.unwrap();
    assert!(!*a_leading.borrow_and_update());
    let released = lease(&client, ns.name()).await;
    assert_eq!(released.holder_identity, None);
    let start = Instant::now();
    timeout(PROMPTLY, b.acquire())
        .await
        .expect("b acquires after the release")
        .unwrap();
    assert!(
        start.elapsed() < LEASE,
        "b waited {:?}, as if the Lease had not been released",
        start.elapsed()
    );
    let spec = lease(&client, ns.name()).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[tokio::test]
async fn a_leader_that_stops_renewing_is_replaced_after_expiry() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();

    let a = lead(&client, ns.name(), "replica-a").await;
    let a_leading = a.leading();
    let b = LeaderElector::new(client.clone(), lease_config(ns.name(), "replica-b"));
    // a crashes: no more renewals, no release.
    drop(a);
    assert!(!*a_leading.borrow(), "dropping the guard stops leading");
    let last = lease(&client, ns.name()).await;
    let expires = last.renew_time.as_ref().unwrap().0.as_millisecond()
        + 1000 * i64::from(last.lease_duration_seconds.unwrap());

    timeout(PROMPTLY, b.acquire())
        .await
        .expect("b acquires after expiry")
        .unwrap();
    assert!(
        Timestamp::now().as_millisecond() >= expires,
        "b took the Lease before it expired"
    );
    let spec = lease(&client, ns.name()).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(spec.acquire_time.unwrap().0 > last.renew_time.unwrap().0);

    // And back again: transitions keep counting.
    let b = b.run();
    let a = LeaderElector::new(client.clone(), lease_config(ns.name(), "replica-a"));
    b.release().await.unwrap();
    timeout(PROMPTLY, a.acquire()).await.unwrap().unwrap();
    assert_eq!(lease(&client, ns.name()).await.lease_transitions, Some(2));
}

#[tokio::test]
async fn a_leader_whose_lease_is_taken_stops_leading() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();

    let a = lead(&client, ns.name(), "replica-a").await;
    let mut leading = a.leading();
    // Someone else writes the Lease (an operator by hand, or a replica with a badly skewed clock).
    let api = Api::<Lease>::namespaced(client.clone(), ns.name());
    let mut lease = api.get("kfp-operator-lock").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace("kfp-operator-lock", &PostParams::default(), &lease)
        .await
        .unwrap();

    wait_until_not_leading(&mut leading, PROMPTLY).await;
    assert!(!a.is_leading());
    let spec = self::lease(&client, ns.name()).await;
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some("intruder"),
        "a did not take it back"
    );
}

/// A TCP proxy to the API server that can be cut, to make renewals fail.
struct Proxy {
    address: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                let connection = tokio::spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                registry.lock().unwrap().push(connection.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Proxy { address, tasks }
    }

    /// Closes every connection and stops accepting new ones.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_its_lease_expires() {
    let env = TestEnv::shared().await.unwrap();
    let ns = env.namespace().await.unwrap();
    let client = env.client().await.unwrap();

    let server: SocketAddr = env.server_url().trim_start_matches("https://").parse().unwrap();
    let proxy = Proxy::start(server).await;
    let mut config = env.admin_config().await.unwrap();
    config.cluster_url = format!("https://{}", proxy.address).parse().unwrap();
    let proxied = Client::try_from(config).unwrap();

    let a = lead(&proxied, ns.name(), "replica-a").await;
    let mut leading = a.leading();
    // Let a renew at least once through the proxy.
    let first = lease(&client, ns.name()).await.renew_time.unwrap().0;
    timeout(PROMPTLY, async {
        while lease(&client, ns.name()).await.renew_time.unwrap().0 == first {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a renews");

    proxy.cut();
    wait_until_not_leading(&mut leading, PROMPTLY).await;
    let now = Timestamp::now().as_millisecond();
    // a stopped before anyone else could take over: the Lease it last renewed was still valid.
    let spec = lease(&client, ns.name()).await;
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-a"));
    let expires =
        spec.renew_time.unwrap().0.as_millisecond() + 1000 * i64::from(spec.lease_duration_seconds.unwrap());
    assert!(
        now < expires,
        "a stopped leading {} ms after its Lease expired",
        now - expires
    );

    // Then b takes over once the Lease has expired.
    let b = LeaderElector::new(client.clone(), lease_config(ns.name(), "replica-b"));
    timeout(PROMPTLY, b.acquire()).await.unwrap().unwrap();
    assert!(Timestamp::now().as_millisecond() >= expires);
    assert_eq!(lease(&client, ns.name()).await.lease_transitions, Some(1));
}

/// The API server goes away for longer than the Lease (docs/decisions/0016-backoff-during-outages.md): the leader
/// stops its controllers before its Lease expires, keeps competing for the Lease with backoff instead of exiting,
/// takes it again once the API server is back, and reconciles what was created meanwhile. Current-thread, so that
/// the capturing subscriber sees every task of the operator and nothing of other tests.
#[tokio::test(flavor = "current_thread")]
async fn a_leader_outlives_an_outage_longer_than_its_lease_without_exiting() {
    use kfp_operator::health::Readiness;
    use kfp_operator::operator::{Shutdown, run_as_leader};
    use support::outage::{Fixture, LogCapture};
    const OUTAGE: Duration = Duration::from_secs(12);
    // A fresh controller lists at once; the Lease poll backs off to at most the Lease duration.
    const RECOVERY: Duration = Duration::from_secs(60);

    let fixture = Fixture::start().await;
    let logs = LogCapture::default();
    let _logging = tracing::subscriber::set_default(logs.subscriber());
    let settings = lease_config(&fixture.namespace, "replica-a");
    assert!(
        settings.lease_duration * 3 < OUTAGE,
        "the outage outlasts the Lease"
    );
    let elector = LeaderElector::new(fixture.proxied.clone(), settings);
    let ctx = fixture.context().with_instance("replica-a");
    let sources = Some(fixture.sources());
    let (trigger, shutdown) = Shutdown::new();
    let operator =
        tokio::spawn(async move { run_as_leader(ctx, sources, elector, shutdown, &Readiness::new()).await });
    fixture.create_pipeline("before").await;
    fixture.wait_succeeded("before", support::WAIT).await;

    let figures = fixture
        .outage(&logs, OUTAGE, fixture.create_pipeline("during"))
        .await;
    assert!(
        !operator.is_finished(),
        "the leader exited during the outage: {figures:#?}"
    );
    let stopped = |line: &String| line.contains("lost the leader election Lease and stopped the controllers");
    assert_eq!(
        figures.lines.iter().filter(|l| stopped(l)).count(),
        1,
        "the leader stopped leading once: {figures:#?}"
    );
    let back = std::time::Instant::now();
    fixture.wait_succeeded("during", RECOVERY).await;
    eprintln!(
        "leader outage {:.1} s: {} connection attempts ({:.2}/s), {} log lines ({:.1}/min) {:?}; reconciling again \
         {:.1} s after the API server came back",
        figures.seconds,
        figures.attempts,
        figures.attempts_per_second(),
        figures.lines.len(),
        figures.lines_per_minute(),
        figures.lines_by_failure(),
        back.elapsed().as_secs_f64()
    );
    figures.assert_bounded();
    let spec = lease(&fixture.client, &fixture.namespace).await;
    assert_eq!(
        spec.holder_identity.as_deref(),
        Some("replica-a"),
        "it took the Lease again"
    );
    assert!(!operator.is_finished(), "the leader runs on");

    trigger.trigger();
    timeout(support::WAIT, operator)
        .await
        .expect("the leader stops on shutdown")
        .unwrap()
        .unwrap();
    let spec = lease(&fixture.client, &fixture.namespace).await;
    assert_eq!(spec.holder_identity, None, "released on shutdown");
}
