//! The real `openai` Python SDK (from the venv scripts/setup.sh makes) drives the real
//! `switchyard` binary, which answers from the mock upstream.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `switchyard serve` and returns it with the address it printed.
fn serve(config: &Path) -> (Gateway, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("SWITCHYARD_API_KEY", "sk-test")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start switchyard");
    let url = common::printed_address(&mut child);
    (Gateway(child), url)
}

fn python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/setup.sh to create the venv with the openai SDK",
        venv.display()
    );
    venv
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_python_sdk_talks_to_the_gateway() {
    let mock = switchyard_mock::spawn(switchyard_mock::MockConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\napi_keys = [\"${{SWITCHYARD_API_KEY}}\"]\n[store]\npath = {:?}\n[models.large]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"mock\"\nprice = {{ input = 2.5, output = 10.0 }}\n[embeddings]\npath = {:?}\n",
            dir.path().join("log.db").display().to_string(),
            mock.base_url(),
            switchyard_models::find("all-MiniLM-L6-v2")
                .unwrap_or_else(|missing| panic!("{missing}"))
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    let (_gateway, url) = serve(&config);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_sdk.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            // The script's checks must hold even where `assert` statements are stripped.
            .env("PYTHONOPTIMIZE", "1")
            .arg(script)
            .args([
                format!("{url}/v1"),
                "sk-test".into(),
                "large".into(),
                "all-MiniLM-L6-v2".into(),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "openai SDK test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
