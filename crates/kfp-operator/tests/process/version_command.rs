//! `kfp-operator version`: the versions of manifests under each Go hash algorithm, on specs whose versions the Go
//! operator computed (`tests/fixtures/version-command/README.md`).

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/version-command")
}

fn version(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kfp-operator"))
        .arg("version")
        .args(args)
        .output()
        .expect("kfp-operator runs")
}

fn stdout_of(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn prints_each_object_with_the_version_of_the_chosen_algorithm() {
    let folder = fixtures();
    let folder = folder.to_str().unwrap();
    // A folder is its files in name order: list.json, manifests.yaml, v1alpha5.yaml.
    let head = "\
RunConfiguration ns/plain 7f8fc9
RunConfiguration default/parameters d63413
Pipeline ns/ipv6-image dev-b5fe64
Run ns/value-from 3dc9de
RunSchedule ns/far-future bb38b5
Experiment ns/described 2a70f9
";
    let v0_7_0 = "\
RunConfiguration ns/plain 7f8fc9
RunConfiguration default/parameters d63413
Pipeline ns/ipv6-image b5fe64
Run ns/value-from fcba0f
RunSchedule ns/far-future bb38b5
Experiment ns/described 2a70f9
";
    assert_eq!(stdout_of(version(&[folder])), head, "head is the default");
    assert_eq!(stdout_of(version(&["--algorithm", "head", folder])), head);
    assert_eq!(stdout_of(version(&["--algorithm", "v0.7.0", folder])), v0_7_0);
    let one = fixtures().join("v1alpha5.yaml");
    assert_eq!(
        stdout_of(version(&["--algorithm", "v0.7.0", one.to_str().unwrap()])),
        "Experiment ns/described 2a70f9\n"
    );
}

#[test]
fn errors_name_the_file_and_the_document() {
    // The second document of a file that is not a Pipeline.
    let file = fixtures().join("invalid/bad.yaml");
    let output = version(&[file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success());
    let expected = format!(
        "error: Pipeline ns/p in {} (document 2): not a valid v1beta1 object: ",
        file.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");

    let output = version(&["--algorithm", "v0.6.0", fixtures().to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown hash algorithm \"v0.6.0\""),
        "{output:?}"
    );
}
