#!/usr/bin/env bash
# Stops what node-up.sh (and argo-up.sh) started and leaves no process, mount, cgroup or netns.
# Environment: KFP_NODE_STATE, KFP_NODE_NETNS as for node-up.sh. KFP_NODE_KEEP_STATE=1 keeps the state folder.
set -uo pipefail

STATE="${KFP_NODE_STATE:-/tmp/kfp-node}"
NETNS="${KFP_NODE_NETNS:-kfp-node}"
log() { echo "node-down: $*" >&2; }

stop() { # name: TERM the process group node-up.sh started with setsid, KILL after 10s
    local f="$STATE/$1.pid" pid t0=$SECONDS
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { log "killing $1"; kill -KILL -- "-$pid" 2>/dev/null; }
    fi
    rm -f "$f"
    log "stopped $1 ($((SECONDS - t0))s)"
}

# The controller first, then kubelet (it would restart containers), then the containers themselves.
stop workflow-controller
stop fake-gcs-server
stop kube-scheduler
stop kube-controller-manager
stop kubelet
if [[ -S "$STATE/containerd.sock" ]]; then
    CTR=(ctr --address "$STATE/containerd.sock" -n k8s.io)
    for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s KILL "$c" >/dev/null 2>&1; done
    sleep 1
    for c in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks delete -f "$c" >/dev/null 2>&1; done
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd
# containerd-shim-runc-v2 processes re-parent to init (they are their own session): stop the ones of this state.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $STATE/containerd.sock" || true); do
    kill -TERM "$pid" 2>/dev/null
done
stop kube-apiserver
stop etcd

# Mounts under the state folder (container rootfs overlays, kubelet's projected-volume tmpfs), deepest first.
for _ in 1 2 3; do
    mapfile -t mounts < <(awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r)
    ((${#mounts[@]})) || break
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# cgroups kubelet created with the cgroupfs driver (cgroup v1: one tree per controller). rmdir only removes empty ones.
for ctl in /sys/fs/cgroup/*/; do
    [[ -d "$ctl/kubepods" ]] || [[ -d "$ctl/kubepods.slice" ]] || continue
    find "$ctl/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
done

[[ -e "/run/netns/$NETNS" ]] && ip netns del "$NETNS"
[[ "${KFP_NODE_KEEP_STATE:-0}" == 1 ]] || rm -rf "$STATE"
log "stopped"
