#!/usr/bin/env python3
"""SPIKE (issue 15): writes a one-layer OCI image-layout tar, loadable with `ctr -n k8s.io image import`.

No Docker and no registry: the cluster must never pull, so every image is a local, pinned tag
(never `:latest`, which kubelet always pulls).

usage: oci-image.py OUT.tar NAME:TAG [--entrypoint JSON] [--cmd JSON] [--env K=V ...] SRC:DEST ... [--link TARGET:DEST ...]
  SRC:DEST   put the host file SRC at DEST in the image (mode kept)
  --link     add a symlink DEST -> TARGET
Output is reproducible: fixed mtimes, uid/gid 0, sorted entries, uncompressed layer.
"""
import argparse, hashlib, io, json, os, tarfile


def add_dirs(tar, seen, path):
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d not in seen:
            seen.add(d)
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(ti)


def layer_tar(files, links):
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # /tmp: argoexec and most programs want a writable temp dir.
        for d in ("tmp",):
            seen.add(d)
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o1777, 0
            tar.addfile(ti)
        entries = [(dest, "file", src) for src, dest in files] + [(dest, "link", tgt) for tgt, dest in links]
        for dest, kind, what in sorted(entries):
            add_dirs(tar, seen, dest)
            name = dest.strip("/")
            if kind == "file":
                st = os.stat(what)
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = st.st_size, st.st_mode & 0o7777, 0
                with open(what, "rb") as f:
                    tar.addfile(ti, f)
            else:
                ti = tarfile.TarInfo(name)
                ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, what, 0o777, 0
                tar.addfile(ti)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("name", help="full reference, e.g. kfp.local/busybox:1.35 (pinned, never :latest)")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--entrypoint", default="[]", help="JSON array")
    ap.add_argument("--cmd", default="[]", help="JSON array")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--link", action="append", default=[])
    a = ap.parse_intermixed_args()
    a.entrypoint, a.cmd = json.loads(a.entrypoint), json.loads(a.cmd)
    if a.name.endswith(":latest") or ":" not in a.name.rsplit("/", 1)[-1]:
        ap.error("the image name needs a pinned tag other than latest")
    files = [tuple(f.split(":", 1)) for f in a.files]
    links = [tuple(l.split(":", 1)) for l in a.link]

    blobs = {}

    def blob(data, media):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media, "digest": d, "size": len(data)}

    layer = layer_tar(files, links)
    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env,
            "Entrypoint": a.entrypoint or None,
            "Cmd": a.cmd or None,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created_by": "scripts/cluster/oci-image.py"}],
    }
    config_desc = blob(json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    # ctr import names the image from io.containerd.image.name; ref.name is the OCI spelling of the tag.
    manifest_desc["annotations"] = {
        "io.containerd.image.name": a.name,
        "org.opencontainers.image.ref.name": a.name.rsplit(":", 1)[1],
    }
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}

    with tarfile.open(a.out + ".tmp", "w") as out:
        def put(name, data):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            out.addfile(ti, io.BytesIO(data))
        put("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        put("index.json", json.dumps(index, sort_keys=True).encode())
        for d, data in sorted(blobs.items()):
            put("blobs/sha256/" + d.split(":", 1)[1], data)
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
