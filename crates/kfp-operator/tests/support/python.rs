//! The Python environment of the compilers (`scripts/python-env.sh`), for tests that run the real compilers.

use std::path::PathBuf;
use std::process::Command;

/// The compilers' virtualenv, checked: it exists and imports kfp and pytest. Fails (never skips) with what to run
/// when it does not.
pub fn python_env() -> PathBuf {
    let venv = kfp_operator::compiler::local::default_python_env()
        .expect("HOME or KFP_OPERATOR_VENV must be set to find the compilers' Python environment");
    let python = venv.join("bin/python3");
    assert!(
        python.is_file(),
        "the compiler tests need the Python environment {} (kfp 2.17.3 and pytest): run scripts/python-env.sh \
         (scripts/test.sh does), or point KFP_OPERATOR_VENV at one",
        venv.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import kfp, pytest"])
        .output()
        .expect("the venv's python3 runs");
    assert!(
        check.status.success(),
        "{} cannot import kfp and pytest: run scripts/python-env.sh to (re)install compilers/requirements-dev.txt\n{}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    venv
}
