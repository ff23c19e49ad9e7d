#!/usr/bin/env python3
"""Writes a one-layer OCI image-layout tar: no Docker, no registry.

Load it with `ctr -n k8s.io image import OUT.tar` (containerd), or push it with
`skopeo copy oci-archive:OUT.tar docker://REGISTRY/NAME:TAG`. scripts/images.sh builds the project's images with
it; scripts/cluster/ its busybox and pause images.

usage: oci-image.py OUT.tar NAME:TAG [SRC:DEST ...] [--link TARGET:DEST ...] [--entrypoint JSON] [--cmd JSON]
                    [--env K=V ...] [--user UID:GID] [--label K=V ...] [--port N ...] [--gzip]
  SRC:DEST   the host file SRC at DEST in the image (mode kept; a symlink is followed); a folder SRC is added
             with everything below it (symlinks inside it stay symlinks)
  --link     a symlink DEST -> TARGET

The tag must be pinned (never `:latest`: kubelet always pulls those, and these images exist nowhere to pull from).
The output depends only on the inputs' contents and modes: mtimes 0, uid/gid 0, entries sorted, JSON with sorted
keys, gzip without a timestamp or file name. So the same inputs give the same digests.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile


def tar_info(name, kind, mode, size=0, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, linkname, 0
    return ti


def expand(src, dest):
    """(dest, kind, what) entries for SRC:DEST: a file, or a folder's whole tree."""
    if not os.path.isdir(src):
        return [(dest, "file", src)]
    entries = [(dest, "dir", src)]
    for root, dirs, files in os.walk(src):
        for name in dirs + files:
            path = os.path.join(root, name)
            target = dest.rstrip("/") + "/" + os.path.relpath(path, src)
            if os.path.islink(path):
                entries.append((target, "link", os.readlink(path)))
            elif os.path.isdir(path):
                entries.append((target, "dir", path))
            else:
                entries.append((target, "file", path))
    return entries


def layer_tar(entries):
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def parents(path):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    tar.addfile(tar_info(d, tarfile.DIRTYPE, 0o755))

        # /tmp: most programs (argoexec among them) want a writable temp folder.
        seen.add("tmp")
        tar.addfile(tar_info("tmp", tarfile.DIRTYPE, 0o1777))
        names = {}
        for dest, kind, what in entries:
            name = dest.strip("/")
            if names.setdefault(name, (kind, what)) != (kind, what):
                raise SystemExit(f"oci-image.py: {dest} given twice ({names[name][1]} and {what})")
        for name, (kind, what) in sorted(names.items()):
            parents(name)
            if kind == "file":
                st = os.stat(what)
                with open(what, "rb") as f:
                    tar.addfile(tar_info(name, tarfile.REGTYPE, stat.S_IMODE(st.st_mode), st.st_size), f)
            elif kind == "dir":
                if name not in seen:
                    seen.add(name)
                    tar.addfile(tar_info(name, tarfile.DIRTYPE, stat.S_IMODE(os.stat(what).st_mode)))
            else:
                tar.addfile(tar_info(name, tarfile.SYMTYPE, 0o777, linkname=what))
    return buf.getvalue()


def pairs(values, what, sep=":"):
    out = []
    for v in values:
        if sep not in v:
            raise SystemExit(f"oci-image.py: {what} {v!r} is not A{sep}B")
        out.append(tuple(v.split(sep, 1)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("name", help="full reference, e.g. kfp-operator.local/kfp-operator:0.1.0 (pinned, never :latest)")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--entrypoint", default="[]", help="JSON array")
    ap.add_argument("--cmd", default="[]", help="JSON array")
    ap.add_argument("--env", action="append", default=[])
    ap.add_argument("--link", action="append", default=[])
    ap.add_argument("--user", default="")
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--port", action="append", default=[], help="an exposed TCP port (documentation only)")
    ap.add_argument("--gzip", action="store_true", help="compress the layer (smaller to push)")
    a = ap.parse_intermixed_args()
    entrypoint, cmd = json.loads(a.entrypoint), json.loads(a.cmd)
    repo, _, tag = a.name.rpartition(":")
    if not repo or "/" in tag or tag == "latest":
        ap.error("the image name needs a pinned tag other than latest")

    entries = []
    for src, dest in pairs(a.files, "file"):
        entries += expand(src, dest)
    entries += [(dest, "link", target) for target, dest in pairs(a.link, "--link")]

    blobs = {}

    def blob(data, media):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media, "digest": d, "size": len(data)}

    layer = layer_tar(entries)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    if a.gzip:
        layer_desc = blob(gzip.compress(layer, compresslevel=6, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
    else:
        layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + a.env,
        "WorkingDir": "/",
    }
    if entrypoint:
        config["Entrypoint"] = entrypoint
    if cmd:
        config["Cmd"] = cmd
    if a.user:
        config["User"] = a.user
    if a.label:
        config["Labels"] = dict(pairs(a.label, "--label", "="))
    if a.port:
        config["ExposedPorts"] = {f"{p}/tcp": {} for p in a.port}
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "scripts/oci-image.py"}],
    }
    config_desc = blob(json.dumps(image_config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json")
    # ctr import names the image from io.containerd.image.name; ref.name is the OCI spelling of the tag (skopeo's
    # oci-archive: takes the image without it when there is one manifest).
    manifest_desc["annotations"] = {"io.containerd.image.name": a.name, "org.opencontainers.image.ref.name": tag}
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}

    with tarfile.open(a.out + ".tmp", "w", format=tarfile.PAX_FORMAT) as out:

        def put(name, data):
            out.addfile(tar_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

        put("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        put("index.json", json.dumps(index, sort_keys=True).encode())
        out.addfile(tar_info("blobs", tarfile.DIRTYPE, 0o755))
        out.addfile(tar_info("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for d, data in sorted(blobs.items()):
            put("blobs/sha256/" + d.split(":", 1)[1], data)
    os.replace(a.out + ".tmp", a.out)
    print(f"{a.out}: {a.name} {manifest_desc['digest']}")


if __name__ == "__main__":
    main()
