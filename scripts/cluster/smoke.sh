#!/usr/bin/env bash
# The cluster in a box once, by hand, with timings: node-up.sh, a busybox pod (scheduled by kube-scheduler),
# argo-up.sh, a two-step Argo Workflow passing an artifact through the repository, memory of the daemons,
# node-down.sh. The tests use the same scripts through kfp-testenv's cluster mode (kfp_testenv::cluster).
# Needs: scripts/test-assets.sh and scripts/cluster/build-node-assets.sh run before; apt containerd runc busybox-static.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
export KFP_NODE_STATE="${KFP_NODE_STATE:-/tmp/kfp-node}"
export KFP_NODE_NETNS="${KFP_NODE_NETNS:-kfp-node}"
STATE="$KFP_NODE_STATE"
KC=(nsenter --net="/run/netns/$KFP_NODE_NETNS" "${KFP_NODE_ASSETS:-${KFP_TESTENV_CACHE:-${HOME}/.cache/kfp-testenv}/v1.35.4}/kubectl" --kubeconfig "$STATE/admin.kubeconfig")
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
log() { echo "smoke: $*" >&2; }

trap '"$HERE/node-down.sh"' EXIT

t=$(now); "$HERE/node-up.sh"; log "node-up: $(since "$t")s"

t=$(now)
"${KC[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hello, namespace: default}
spec:
  hostNetwork: true       # no CNI
  restartPolicy: Never
  containers:
  - name: main
    image: kfp.local/busybox:1.35.0
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello; ls /var/run/secrets/kubernetes.io/serviceaccount']
EOF
for _ in $(seq 1 300); do
    phase="$("${KC[@]}" get pod hello -o 'jsonpath={.status.phase}')"
    [[ "$phase" == Succeeded || "$phase" == Failed ]] && break; sleep 0.1
done
log "busybox pod: $phase after $(since "$t")s; log: $("${KC[@]}" logs hello | tr '\n' ' ')"
[[ "$phase" == Succeeded ]]

t=$(now); "$HERE/argo-up.sh"; log "argo-up: $(since "$t")s"

t=$(now)
"${KC[@]}" create -f - >/dev/null <<EOF
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: hello, namespace: argo}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - {name: a, template: write}
    - - name: b
        template: read
        arguments: {artifacts: [{name: in, from: "{{steps.a.outputs.artifacts.out}}"}]}
  - name: write
    container:
      image: kfp.local/busybox:1.35.0
      imagePullPolicy: Never
      command: [sh, -c, 'echo hello from argo >/tmp/out']
    outputs: {artifacts: [{name: out, path: /tmp/out}]}
  - name: read
    inputs: {artifacts: [{name: in, path: /tmp/in}]}
    container:
      image: kfp.local/busybox:1.35.0
      imagePullPolicy: Never
      command: [sh, -c, 'grep "hello from argo" /tmp/in']
EOF
for _ in $(seq 1 600); do
    phase="$("${KC[@]}" -n argo get workflow hello -o 'jsonpath={.status.phase}')"
    [[ "$phase" == Succeeded || "$phase" == Failed || "$phase" == Error ]] && break; sleep 0.2
done
log "two-step workflow: $phase after $(since "$t")s"
[[ "$phase" == Succeeded ]] || { "${KC[@]}" -n argo get workflow hello -o yaml; tail -30 "$STATE/logs/workflow-controller.log"; exit 1; }

for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet workflow-controller fake-gcs-server; do
    pid="$(cat "$STATE/$n.pid")"
    kb=0; for p in $(pgrep -g "$pid"); do kb=$((kb + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done
    log "RSS $n: $((kb / 1024)) MiB"
done
