//! `switchyard keys`: the secret printed once and alone, the list without secrets, revoke and
//! rotate against the store a config names, and mistakes that say what to do.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn keys(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("keys")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_are_created_listed_rotated_and_revoked_in_the_configs_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let config = dir.path().join("switchyard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[models.large]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"m\"\n",
            db.display().to_string()
        ),
    )
    .unwrap();

    let (ok, out, err) = keys(&config, &["create", "--name", "team-a", "--expires", "30d"]);
    assert!(ok, "{err}");
    let secret = out.trim();
    assert_eq!(
        out.lines().count(),
        1,
        "the secret alone on its line: {out}"
    );
    assert!(secret.starts_with("sk-sy-"), "{out}");

    let (ok, out, err) = keys(&config, &["create", "--name", "team-b", "--json"]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["name"], "team-b");
    assert!(created["key"].as_str().unwrap().starts_with("sk-sy-"));

    let (ok, out, _) = keys(&config, &["list", "--json"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(listed[0]["expires_at_ms"].as_i64().is_some());
    assert!(!out.contains(secret), "a list never shows a secret");

    let (ok, out, err) = keys(&config, &["rotate", "team-a", "--grace", "0m"]);
    assert!(ok, "{err}");
    assert_ne!(out.trim(), secret);
    let (ok, _, err) = keys(&config, &["revoke", "team-a"]);
    assert!(ok && err.contains("revoked team-a"), "{err}");
    let (_, table, _) = keys(&config, &["list"]);
    let line = table.lines().find(|l| l.starts_with("team-a")).unwrap();
    assert!(
        !line.trim_end().ends_with('–'),
        "revoked shows a time: {line}"
    );

    let (ok, _, err) = keys(&config, &["create", "--name", "team-b"]);
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = keys(&config, &["revoke", "nobody"]);
    assert!(!ok && err.contains("team-a, team-b"), "{err}");
    let (ok, _, err) = keys(&config, &["create", "--name", "x", "--expires", "soon"]);
    assert!(!ok && err.contains("--expires soon"), "{err}");
}
