#!/usr/bin/env bash
# A one-node Kubernetes cluster in a network namespace of its own (kfp-testenv's cluster mode runs it):
#   etcd, kube-apiserver, kube-controller-manager (the controllers a chart needs), kube-scheduler, containerd (CRI)
#   and kubelet, all in netns $KFP_NODE_NETNS; pods share the namespace's network (hostNetwork, no CNI plugin);
#   images imported from OCI tars written here (nothing is ever pulled).
#
# NETWORK SAFETY: every daemon and every pod runs inside the namespace. It has only `lo` and a veth pair whose
# both ends are inside it, so no packet can leave it. Talk to the cluster from the host with
#   nsenter --net=/run/netns/$KFP_NODE_NETNS kubectl --kubeconfig $STATE/admin.kubeconfig ...
#
# Stop everything with node-down.sh. Assets: test-assets.sh (kube-apiserver, etcd) and build-node-assets.sh.
#
# Environment:
#   KFP_NODE_STATE   state folder (default /tmp/kfp-node)
#   KFP_NODE_NETNS   network namespace name (default kfp-node)
#   KFP_TESTENV_CACHE  as in test-assets.sh
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# KFP_NODE_ASSETS: a folder with your own binaries (kube-apiserver, etcd, kubelet, kube-controller-manager,
# kube-scheduler, workflow-controller, argoexec, fake-gcs-server, argo-node-crds/), as KUBEBUILDER_ASSETS is for kfp-testenv.
ASSETS="${KFP_NODE_ASSETS:-${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}/v1.35.4}"
STATE="${KFP_NODE_STATE:-/tmp/kfp-node}"
NETNS="${KFP_NODE_NETNS:-kfp-node}"
NODE=kfp-node
# The node IP: a non-loopback address is needed by kubelet (it refuses 127.0.0.1 as node IP), on a veth pair
# whose both ends live in the namespace (`ip link add type dummy` is not available here).
NODE_IP=10.200.0.1
# The `kubernetes` Service's ClusterIP (first address of --service-cluster-ip-range). There is no kube-proxy, so
# this address is put on the namespace's `lo` and kube-apiserver listens on :443: in-cluster clients (argoexec,
# the operator) then reach the API server with their defaults, and only inside the namespace.
SERVICE_IP=10.0.0.1
BUSYBOX_IMAGE=kfp.local/busybox:1.35.0
PAUSE_IMAGE=kfp.local/pause:1.35.0

log() { echo "node-up: $(date +%T) $*" >&2; }
die() { echo "node-up: error: $*" >&2; exit 1; }
in_ns() { nsenter --net="/run/netns/$NETNS" "$@"; }

for b in kube-apiserver etcd kubelet kube-controller-manager kube-scheduler kubectl; do [[ -x "$ASSETS/$b" ]] || die "$ASSETS/$b missing: run scripts/test-assets.sh and scripts/cluster/build-node-assets.sh"; done
for b in containerd containerd-shim-runc-v2 runc ctr openssl python3; do command -v "$b" >/dev/null || die "$b missing (apt-get install containerd runc)"; done
[[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"
[[ ! -e "/run/netns/$NETNS" ]] || die "netns $NETNS exists: run node-down.sh first"

T0=$SECONDS
mkdir -p "$STATE"/{pki,logs,images,etcd,containerd,kubelet,pod-logs}

# --- network namespace ------------------------------------------------------------------------------------------
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip -n "$NETNS" link add veth0 type veth peer name veth1
ip -n "$NETNS" addr add "$NODE_IP/24" dev veth0
ip -n "$NETNS" link set veth0 up
ip -n "$NETNS" link set veth1 up
# A default route: some components look for one to pick an interface. It leads to veth1, inside the namespace.
ip -n "$NETNS" route add default dev veth0
ip -n "$NETNS" addr add "$SERVICE_IP/32" dev lo
# Pods share the namespace's network (hostNetwork): services that listen on a Service's own port below 1024 (the
# operator's feed on 80) may then bind it as non-root, as they could in a pod network of their own.
ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_unprivileged_port_start=0

# --- PKI (openssl) ----------------------------------------------------------------------------------------------
P="$STATE/pki"
cert() { # name CN O sans...
    local name="$1" cn="$2" o="$3"; shift 3
    local ext="$P/$name.ext"
    { echo "basicConstraints=CA:FALSE"; echo "keyUsage=digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=serverAuth,clientAuth"; [[ $# -gt 0 ]] && echo "subjectAltName=$(IFS=,; echo "$*")"; } >"$ext"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$P/$name.key" -subj "/CN=$cn${o:+/O=$o}" -out "$P/$name.csr" 2>/dev/null
    openssl x509 -req -in "$P/$name.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 -extfile "$ext" -out "$P/$name.crt" 2>/dev/null
}
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$P/ca.key" -subj "/CN=kfp-node-ca" -days 2 -out "$P/ca.crt" 2>/dev/null
cert apiserver kube-apiserver "" IP:127.0.0.1 "IP:$NODE_IP" "IP:$SERVICE_IP" DNS:localhost DNS:kubernetes DNS:kubernetes.default DNS:kubernetes.default.svc DNS:kubernetes.default.svc.cluster.local
cert admin kfp-admin system:masters
# kubelet authenticates as its Node (Node authorizer + NodeRestriction), as on a real cluster.
cert kubelet "system:node:$NODE" system:nodes
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null

kubeconfig() { # file cert key
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kfp-node
  cluster: {server: "https://127.0.0.1:443", certificate-authority: "$P/ca.crt"}
users:
- name: user
  user: {client-certificate: "$2", client-key: "$3"}
contexts:
- name: kfp-node
  context: {cluster: kfp-node, user: user, namespace: default}
current-context: kfp-node
EOF
}
kubeconfig "$STATE/admin.kubeconfig" "$P/admin.crt" "$P/admin.key"
kubeconfig "$STATE/kubelet.kubeconfig" "$P/kubelet.crt" "$P/kubelet.key"

# --- etcd + kube-apiserver ----------------------------------------------------------------------------------------
# setsid: own process group, so node-down.sh can stop each daemon with its children by pid.
start() { # name cmd...
    local name="$1"; shift
    setsid nsenter --net="/run/netns/$NETNS" "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/$name.pid"
}
start etcd "$ASSETS/etcd" --name=default --data-dir="$STATE/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=default=http://127.0.0.1:2380 --log-level=warn --unsafe-no-fsync
start kube-apiserver "$ASSETS/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=443 --advertise-address="$NODE_IP" \
    --cert-dir="$STATE/apiserver-certs" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --kubelet-client-certificate="$P/admin.crt" --kubelet-client-key="$P/admin.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true --profiling=false \
    --kubelet-preferred-address-types=InternalIP \
    --enable-aggregator-routing=true
# --enable-aggregator-routing: webhooks (admission, conversion) are called at their Service's endpoints (pod IP and
# target port) rather than its ClusterIP, which nothing routes here (no kube-proxy).
# ServiceAccount admission stays on (unlike kfp-testenv): pods then get their projected token volume.

KC=(in_ns "$ASSETS/kubectl" --kubeconfig "$STATE/admin.kubeconfig")
for i in $(seq 1 120); do "${KC[@]}" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
"${KC[@]}" get --raw /readyz >/dev/null || die "kube-apiserver not ready: see $STATE/logs/kube-apiserver.log"
log "kube-apiserver ready after $((SECONDS - T0))s"

# --- images ----------------------------------------------------------------------------------------------------
# busybox: every applet as a symlink. pause: the CRI sandbox container (containerd would pull registry.k8s.io/pause
# otherwise); busybox's sh waiting forever, exiting on TERM.
links=(); for a in $(/bin/busybox --list); do [[ "$a" == busybox ]] || links+=(--link "/bin/busybox:/bin/$a"); done
python3 "$HERE/../oci-image.py" "$STATE/images/busybox.tar" "$BUSYBOX_IMAGE" /bin/busybox:/bin/busybox "${links[@]}" --cmd '["/bin/sh"]' 
python3 "$HERE/../oci-image.py" "$STATE/images/pause.tar" "$PAUSE_IMAGE" /bin/busybox:/bin/busybox --link /bin/busybox:/bin/sh \
    --link /bin/busybox:/bin/sleep --entrypoint '["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"]'

# --- containerd ------------------------------------------------------------------------------------------------
cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$STATE/containerd.sock"
[ttrpc]
  address = "$STATE/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  # The sandbox image must be a local tag: nothing may be pulled.
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE containerd cannot lower oom_score_adj below its own: keep it at least its own.
  restrict_oom_score_adj = true
  # No CNI: only hostNetwork pods run (in this namespace's network).
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    # overlayfs works on this ext4 root.
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # kubelet uses the cgroupfs driver (cgroup v1 machine, no systemd).
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "$STATE/cni/net.d"
    # Empty: no CNI plugin can run, so a pod without hostNetwork fails to start (with a clear event) rather than
    # getting a network of its own.
    bin_dir = "$STATE/cni/bin"
EOF
# A CNI network configuration makes the runtime report its network ready, so the node becomes Ready and is not
# tainted not-ready (kube-scheduler would not place pods on it). hostNetwork pods never call a CNI plugin.
mkdir -p "$STATE/cni/net.d" "$STATE/cni/bin"
cat >"$STATE/cni/net.d/10-host-network-only.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "host-network-only", "plugins": [{"type": "loopback"}]}
EOF
start containerd containerd --config "$STATE/containerd.toml"
CTR=(ctr --address "$STATE/containerd.sock" -n k8s.io)
for i in $(seq 1 60); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.5; done
"${CTR[@]}" version >/dev/null || die "containerd not ready: see $STATE/logs/containerd.log"
for t in "$STATE"/images/*.tar; do "${CTR[@]}" image import "$t" >/dev/null; done
log "containerd ready, images imported after $((SECONDS - T0))s"

# --- kubelet ---------------------------------------------------------------------------------------------------
cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The machine has cgroup v1; kubelet 1.35 refuses it unless told otherwise.
failCgroupV1: false
# No systemd here.
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$STATE/containerd.sock
podLogsDir: $STATE/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$P/ca.crt"}
authorization: {mode: Webhook}
# No DNS server in the namespace; hostNetwork pods use the host's resolv.conf (which reaches nothing from here).
resolvConf: /etc/resolv.conf
# Never evict or garbage-collect the imported images: they cannot be pulled back.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Absolute, not percentages: on a big shared disk 1% is gigabytes, and a nearly full host disk put the node under
# DiskPressure (its pods never scheduled) although the test needs little space.
evictionHard: {memory.available: "100Mi", nodefs.available: "100Mi", imagefs.available: "100Mi"}
serializeImagePulls: false
EOF
start kubelet "$ASSETS/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --hostname-override="$NODE" --node-ip="$NODE_IP" --v=1
ready() { [[ "$("${KC[@]}" get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]; }
for i in $(seq 1 120); do ready && break; sleep 0.5; done
ready || die "the node did not become Ready: see $STATE/logs/kubelet.log"
log "node Ready after $((SECONDS - T0))s"

# --- controller-manager and scheduler ------------------------------------------------------------------------------
# The controllers a chart install needs: Deployments and ReplicaSets, Endpoints (the webhooks are called there),
# garbage collection (a deleted Workflow takes its pods), each namespace's `default` ServiceAccount and
# `kube-root-ca.crt`, namespace deletion, the node lifecycle (it lifts the not-ready taint kubelet registers with).
# No service-account token Secrets: pods get projected tokens.
start kube-controller-manager "$ASSETS/kube-controller-manager" --kubeconfig="$STATE/admin.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 \
    --controllers=deployment,replicaset,endpoint,endpointslice,garbagecollector,serviceaccount,root-ca-cert-publisher,namespace,nodelifecycle \
    --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" --use-service-account-credentials=false
start kube-scheduler "$ASSETS/kube-scheduler" --kubeconfig="$STATE/admin.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10259
for i in $(seq 1 120); do "${KC[@]}" -n default get serviceaccount default >/dev/null 2>&1 && break; sleep 0.5; done
"${KC[@]}" -n default get serviceaccount default >/dev/null 2>&1 \
    || die "kube-controller-manager created no default ServiceAccount: see $STATE/logs/kube-controller-manager.log"
log "up in $((SECONDS - T0))s; kubectl: nsenter --net=/run/netns/$NETNS $ASSETS/kubectl --kubeconfig $STATE/admin.kubeconfig"
