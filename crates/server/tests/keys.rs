//! Virtual keys: created, rotated and revoked in the store (as `switchyard keys` does) while the
//! gateway runs; each change reaches it within two seconds, and a key's traffic is its own.

mod common;

use std::time::{Duration, Instant};

use common::{start, upstream};
use serde_json::{json, Value};
use switchyard_mock::MockConfig;
use switchyard_store::Keys;

fn question() -> Value {
    json!({"model": "large", "messages": [{"role": "user", "content": "Hello"}]})
}

async fn status(gw: &common::Running, key: Option<&str>) -> u16 {
    let mut req = gw
        .client
        .post(gw.url("/v1/chat/completions"))
        .json(&question());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap().status().as_u16()
}

/// How long until a request with `key` gets `want` (polled every 50 ms, for at most 5 s).
async fn until(gw: &common::Running, key: Option<&str>, want: u16) -> Duration {
    let started = Instant::now();
    while status(gw, key).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never got {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_key_created_and_revoked_beside_a_running_gateway_takes_effect_within_two_seconds() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let mut gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    assert_eq!(
        status(&gw, None).await,
        200,
        "no key configured or created: /v1 is open"
    );

    let keys = Keys::open(&gw.db).unwrap();
    let team_a = keys.create("team-a", None).unwrap();
    let team_b = keys.create("team-b", None).unwrap();
    assert!(
        until(&gw, None, 401).await < Duration::from_secs(2),
        "once a key exists, /v1 needs one"
    );
    assert_eq!(status(&gw, Some(&team_a)).await, 200);
    assert_eq!(status(&gw, Some(&team_b)).await, 200);
    assert_eq!(status(&gw, Some("sk-sy-not-a-key")).await, 401);

    let (_, own) = gw.get_json("/v1/usage?group_by=key", Some(&team_b)).await;
    assert_eq!(own["data"].as_array().unwrap().len(), 1, "{own}");
    assert_eq!(own["data"][0]["group"], "team-b");
    assert_eq!(own["total"]["requests"], 1, "a key sees only its own usage");

    keys.revoke("team-a").unwrap();
    assert!(until(&gw, Some(&team_a), 401).await < Duration::from_secs(2));
    assert_eq!(status(&gw, Some(&team_b)).await, 200);

    let rows = gw.rows().await;
    let mut named: Vec<Option<&str>> = rows
        .iter()
        .filter(|r| r.status == 200 && !r.requested_model.is_empty())
        .map(|r| r.key_name.as_deref())
        .collect();
    // The polls repeat a key: each run of one key is one step of the test.
    named.dedup();
    assert_eq!(
        named,
        vec![
            None,
            Some("team-a"),
            Some("team-b"),
            Some("team-a"),
            Some("team-b")
        ]
    );
    for r in &rows {
        assert!(
            r.key_name.as_deref().is_none_or(|k| !k.starts_with("sk-")),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn a_rotated_key_works_old_and_new_within_its_grace_and_an_expired_one_not_at_all() {
    let mock = switchyard_mock::spawn(MockConfig::default()).await.unwrap();
    let gw = start(&upstream("large", "openai", &mock.base_url(), "mock")).await;
    let keys = Keys::open(&gw.db).unwrap();
    let old = keys.create("svc", None).unwrap();
    let now = switchyard_store::RequestRecord::now_ms();
    let brief = keys.create("brief", Some(now + 1_500)).unwrap();
    until(&gw, Some(&old), 200).await;
    let new = keys.rotate("svc", 60_000).unwrap();
    until(&gw, Some(&new), 200).await;
    assert_eq!(
        status(&gw, Some(&old)).await,
        200,
        "the old secret keeps its grace"
    );
    let gone = until(&gw, Some(&brief), 401).await;
    assert!(
        gone < Duration::from_secs(4),
        "an expired key stops within a second of expiring"
    );

    // Rotating again with no grace: only the newest secret opens.
    let newest = keys.rotate("svc", 0).unwrap();
    until(&gw, Some(&new), 401).await;
    assert_eq!(status(&gw, Some(&old)).await, 401);
    assert_eq!(status(&gw, Some(&newest)).await, 200);
}
