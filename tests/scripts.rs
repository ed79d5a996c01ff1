//! The Python helpers in `scripts/` (mesh-test's package) have their own unit tests; running
//! them here keeps them inside the README's one test command (`scripts/test`, whose first step is
//! `cargo test`).

#[test]
fn script_unit_tests_pass() -> anyhow::Result<()> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("bash")
        .arg(format!("{root}/scripts/test-scripts"))
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/test-scripts failed:\n{stderr}"
    );
    assert!(stderr.contains("OK"), "no unittest summary in:\n{stderr}");
    Ok(())
}
