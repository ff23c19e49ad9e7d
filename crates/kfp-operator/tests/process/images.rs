//! `scripts/oci-image.py`, the OCI image writer of `scripts/images.sh`: the same inputs give the same bytes (so the
//! same digests), the tar is an OCI image layout that containerd imports under the given name, the image config
//! carries the user and entrypoint, and `:latest` is refused (kubelet would try to pull it). Runs python3 and tar;
//! building real images needs the release binary and is measured in docs/development.md instead.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

fn oci_image(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(support::repo_root().join("scripts/oci-image.py"))
        .args(args)
        .output()
        .expect("python3 is needed to run scripts/oci-image.py")
}

/// `member` of the tar `archive`, as bytes.
fn member(archive: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -xOf {archive:?} {member}: {out:?}");
    out.stdout
}

fn blob(archive: &Path, digest: &Value) -> Vec<u8> {
    let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
    member(archive, &format!("blobs/sha256/{hex}"))
}

#[test]
fn the_same_inputs_give_the_same_image_named_as_asked() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("program");
    std::fs::write(&program, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = |out: &str| {
        vec![
            dir.path().join(out).to_string_lossy().to_string(),
            "kfp-operator.local/example:0.1.0".to_string(),
            format!("{}:/bin/program", program.display()),
            "--link".to_string(),
            "/bin/program:/usr/bin/alias".to_string(),
            "--user".to_string(),
            "65532:65532".to_string(),
            "--entrypoint".to_string(),
            r#"["/bin/program"]"#.to_string(),
            "--gzip".to_string(),
        ]
    };
    let first = args("first.tar");
    let run = |a: &[String]| oci_image(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(&first).status.success(), "{:?}", run(&first));
    // Another modification time of the input: not part of the image.
    std::fs::File::options()
        .write(true)
        .open(&program)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(86_400))
        .unwrap();
    assert!(run(&args("second.tar")).status.success());
    let (first, second) = (dir.path().join("first.tar"), dir.path().join("second.tar"));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "the same inputs give the same bytes"
    );

    let index: Value = serde_json::from_slice(&member(&first, "index.json")).unwrap();
    let manifest_desc = &index["manifests"][0];
    assert_eq!(
        manifest_desc["annotations"]["io.containerd.image.name"], "kfp-operator.local/example:0.1.0",
        "the name `ctr image import` gives the image"
    );
    assert_eq!(
        manifest_desc["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0"
    );
    let manifest: Value = serde_json::from_slice(&blob(&first, &manifest_desc["digest"])).unwrap();
    let config: Value = serde_json::from_slice(&blob(&first, &manifest["config"]["digest"])).unwrap();
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Entrypoint"], json!(["/bin/program"]));
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let layer = dir.path().join("layer.tar.gz");
    std::fs::write(&layer, blob(&first, &manifest["layers"][0]["digest"])).unwrap();
    let listed = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&layer)
        .output()
        .unwrap();
    let listing = String::from_utf8(listed.stdout).unwrap();
    let entries: Vec<Vec<&str>> = listing.lines().map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<&str> = entries.iter().map(|e| e[5].trim_end_matches('/')).collect();
    assert_eq!(
        names,
        ["tmp", "bin", "bin/program", "usr", "usr/bin", "usr/bin/alias"],
        "{listing}"
    );
    for entry in &entries {
        assert_eq!(entry[1], "0/0", "owned by root: {listing}");
        assert_eq!(entry[3], "1970-01-01", "no timestamps: {listing}");
    }
    assert!(entries[2][0].starts_with("-rwx"), "modes are kept: {listing}");
    assert_eq!(entries[5][6..], ["->", "/bin/program"]);
}

#[test]
fn an_image_needs_a_pinned_tag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image.tar").to_string_lossy().to_string();
    for name in ["kfp-operator.local/example:latest", "kfp-operator.local/example"] {
        let refused = oci_image(&[&out, name]);
        assert_eq!(refused.status.code(), Some(2), "{name}: {refused:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("needs a pinned tag other than latest"),
            "{refused:?}"
        );
    }
    assert!(!Path::new(&out).exists());
}
