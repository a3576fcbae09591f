//! The command line as a user meets it.

use std::process::Command;

fn switchyard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.env(switchyard_models::ENV, switchyard_models::dir())
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn chat_answers_through_the_embedded_local_default() {
    let dir = tempfile::tempdir().unwrap();
    // Only the small model: with the larger tier fetched too, the default is a cascade.
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let small = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let found = switchyard_models::find(small).unwrap_or_else(|missing| panic!("{missing}"));
    std::os::unix::fs::symlink(found, models.join(small)).unwrap();
    let out = switchyard()
        .env(switchyard_models::ENV, &models)
        .current_dir(dir.path())
        .args([
            "chat",
            "What is the capital of France?",
            "--max-tokens",
            "48",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Paris"), "{stdout}");
    assert!(stdout.contains("model:   small"), "{stdout}");
    assert!(stdout.contains("route:   default"), "{stdout}");
    // The in-process gateway logged the request before exiting.
    let rows = switchyard_store::read_requests(&dir.path().join("switchyard.db")).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].model, "small");
}

#[test]
fn init_writes_a_config_and_will_not_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    assert!(switchyard()
        .arg("init")
        .arg(&path)
        .status()
        .unwrap()
        .success());
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("[models.small]"));
    let again = switchyard().arg("init").arg(&path).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn a_bad_config_is_refused_with_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"oops\"\n",
    )
    .unwrap();
    let out = switchyard()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("lisen"), "{err}");
}

#[test]
fn serve_without_models_says_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard()
        .env("SWITCHYARD_MODELS", dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scripts/fetch-models.sh"));
}
