#!/usr/bin/env bash
# Starts the real Argo workflow-controller against the node node-up.sh started, inside its network namespace, with
# argoexec from a locally written image and fake-gcs-server on loopback as the artifact repository (GCS driver).
# Environment: KFP_NODE_STATE, KFP_NODE_NETNS, KFP_TESTENV_CACHE as for node-up.sh;
#   KFP_NODE_HOSTNAMES  names every workflow pod resolves to 127.0.0.1 (hostAliases), e.g. provider Service names:
#                       pods share the node's network and there is no cluster DNS.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# KFP_NODE_ASSETS: a folder with your own binaries (kube-apiserver, etcd, kubelet, kube-controller-manager,
# kube-scheduler, workflow-controller, argoexec, fake-gcs-server, argo-node-crds/), as KUBEBUILDER_ASSETS is for kfp-testenv.
ASSETS="${KFP_NODE_ASSETS:-${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}/v1.35.4}"
STATE="${KFP_NODE_STATE:-/tmp/kfp-node}"
NETNS="${KFP_NODE_NETNS:-kfp-node}"
NODE=kfp-node
ARGO_VERSION=v3.7.9
# Pinned local tag, as scripts/images.sh writes it: a `:latest` image is always pulled, and nothing can be pulled here.
EXECUTOR_IMAGE=kfp-operator.local/argoexec:${ARGO_VERSION}
NS=argo

log() { echo "argo-up: $(date +%T) $*" >&2; }
die() { echo "argo-up: error: $*" >&2; exit 1; }
for b in workflow-controller argoexec fake-gcs-server kubectl; do [[ -x "$ASSETS/$b" ]] || die "$ASSETS/$b missing: run build-node-assets.sh"; done
[[ -d "$ASSETS/argo-node-crds" ]] || die "$ASSETS/argo-node-crds missing: run build-node-assets.sh"
[[ -e "/run/netns/$NETNS" ]] || die "no netns $NETNS: run node-up.sh first"
T0=$SECONDS
KC=(nsenter --net="/run/netns/$NETNS" "$ASSETS/kubectl" --kubeconfig "$STATE/admin.kubeconfig")
CTR=(ctr --address "$STATE/containerd.sock" -n k8s.io)

# The executor image (scripts/images.sh): argoexec alone (static, CGO_ENABLED=0). Its init container copies
# /bin/argoexec into the shared /var/run/argo volume; the main container (any image) then runs it as its entrypoint
# wrapper (emissary).
KFP_IMAGES_REGISTRY=kfp-operator.local "$HERE/../images.sh" --out "$STATE/images" argoexec >/dev/null
"${CTR[@]}" image import "$STATE/images/argoexec.tar" >/dev/null
log "argoexec image imported after $((SECONDS - T0))s"

# All Argo CRDs: the controller watches workflowtaskresults, workflowtasksets, cronworkflows, ... too.
"${KC[@]}" apply --server-side -f "$ASSETS/argo-node-crds" >/dev/null
# (kubectl wait fails at once on a CRD with no status yet: retry.)
for i in $(seq 1 20); do "${KC[@]}" wait --for=condition=Established crd --all --timeout=30s >/dev/null 2>&1 && break; sleep 0.5; done
log "CRDs established after $((SECONDS - T0))s"

"${KC[@]}" get namespace "$NS" >/dev/null 2>&1 || "${KC[@]}" create namespace "$NS" >/dev/null
# (kube-controller-manager creates the namespace's `default` ServiceAccount and `kube-root-ca.crt`.)
# argoexec (wait container) writes WorkflowTaskResults and reads pods as the workflow's ServiceAccount.
# (Only for workflows in this namespace, such as smoke.sh's; the operator's run as the chart's ServiceAccount.)
"${KC[@]}" create clusterrolebinding argo-default-admin --clusterrole=cluster-admin --serviceaccount="$NS:default" \
    --dry-run=client -o yaml | "${KC[@]}" apply -f - >/dev/null

# The artifact repository: fake-gcs-server on the namespace's loopback (plain HTTP, in memory). argoexec's GCS
# client talks to it through STORAGE_EMULATOR_HOST, without credentials.
GCS_PORT=4443
setsid nsenter --net="/run/netns/$NETNS" "$ASSETS/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
    -backend memory -public-host "127.0.0.1:$GCS_PORT" -log-level warn \
    >"$STATE/logs/fake-gcs-server.log" 2>&1 </dev/null &
echo $! >"$STATE/fake-gcs-server.pid"
for i in $(seq 1 60); do
    nsenter --net="/run/netns/$NETNS" curl -sf "http://127.0.0.1:$GCS_PORT/storage/v1/b" >/dev/null 2>&1 && break; sleep 0.5
done
nsenter --net="/run/netns/$NETNS" curl -sf -X POST -H 'Content-Type: application/json' -d '{"name":"argo-artifacts"}' \
    "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=kfp-node" >/dev/null \
    || die "fake-gcs-server did not create the bucket: see $STATE/logs/fake-gcs-server.log"
log "artifact repository up after $((SECONDS - T0))s"

aliases=""
if [[ -n "${KFP_NODE_HOSTNAMES:-}" ]]; then
    aliases="hostAliases: [{ip: 127.0.0.1, hostnames: [$(echo $KFP_NODE_HOSTNAMES | sed 's/ /, /g')]}]"
fi
# The controller reads this ConfigMap from the namespace of its kubeconfig context.
# workflowDefaults: every workflow pod is hostNetwork (there is no CNI), with the names above on loopback.
"${KC[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: workflow-controller-configmap, namespace: $NS}
data:
  executor: |
    imagePullPolicy: Never
    env:
    - {name: STORAGE_EMULATOR_HOST, value: "127.0.0.1:$GCS_PORT"}
  artifactRepository: |
    archiveLogs: false
    gcs:
      bucket: argo-artifacts
      keyFormat: "{{workflow.namespace}}/{{workflow.name}}/{{pod.name}}"
  workflowDefaults: |
    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      $aliases
EOF

sed -e "s/namespace: default/namespace: $NS/" "$STATE/admin.kubeconfig" >"$STATE/argo.kubeconfig"
# LEADER_ELECTION_DISABLE: one replica; skips waiting for a Lease. DEFAULT_REQUEUE_TIME=1s (default 10s): a
# workflow is seen Succeeded ~1s after its last pod instead of up to 10s.
setsid nsenter --net="/run/netns/$NETNS" env LEADER_ELECTION_DISABLE=true DEFAULT_REQUEUE_TIME=1s \
    "$ASSETS/workflow-controller" --kubeconfig "$STATE/argo.kubeconfig" \
    --executor-image "$EXECUTOR_IMAGE" --executor-image-pull-policy Never \
    >"$STATE/logs/workflow-controller.log" 2>&1 </dev/null &
echo $! >"$STATE/workflow-controller.pid"
for i in $(seq 1 60); do
    nsenter --net="/run/netns/$NETNS" curl -sf http://127.0.0.1:6060/healthz >/dev/null 2>&1 && break; sleep 0.5
done
log "workflow-controller started after $((SECONDS - T0))s (healthz: $(nsenter --net="/run/netns/$NETNS" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:6060/healthz))"
