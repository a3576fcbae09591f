//! `switchyard keys`: virtual API keys in the store a config names. A new secret is printed
//! once, alone on its line; the store keeps only its keyed hash. A running gateway on the same
//! store sees a change within about a second.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;
use switchyard_store::Keys;

use crate::usage::{age_ms, store_of};

#[derive(clap::Args)]
pub struct Args {
    /// The config naming the store ([store] path); without it: switchyard.db here.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create a key; its secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// It stops working after this long: 30m, 24h, 30d, 2w.
        #[arg(long)]
        expires: Option<String>,
        /// Print `{"name", "key", "expires_at_ms"}` instead of the bare secret.
        #[arg(long)]
        json: bool,
    },
    /// Every key, with when it was created, expires and was revoked (never a secret).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop a key now (its rotated-out secret too).
    Revoke { name: String },
    /// A new secret for a key; the old one keeps working for the grace period.
    Rotate {
        name: String,
        /// How long the old secret still works: 0m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        grace: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<()> {
    let keys = Keys::open(&store_of(args.config.as_deref())?)?;
    match args.command {
        Command::Create {
            name,
            expires,
            json,
        } => {
            let expires_at_ms = expires
                .as_deref()
                .map(|age| age_ms("--expires", age))
                .transpose()?
                .map(|ms| switchyard_store::RequestRecord::now_ms().saturating_add(ms));
            let secret = keys.create(&name, expires_at_ms)?;
            if json {
                println!(
                    "{}",
                    json!({"name": name, "key": secret, "expires_at_ms": expires_at_ms})
                );
            } else {
                println!("{secret}");
            }
        }
        Command::List { json } => {
            let all = keys.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                println!(
                    "{:<24} {:<20} {:<20} {:<20}",
                    "name", "created", "expires", "revoked"
                );
                for k in all {
                    println!(
                        "{:<24} {:<20} {:<20} {:<20}",
                        k.name,
                        time(Some(k.created_at_ms)),
                        time(k.expires_at_ms),
                        time(k.revoked_at_ms)
                    );
                }
            }
        }
        Command::Revoke { name } => {
            keys.revoke(&name)?;
            eprintln!("revoked {name}");
        }
        Command::Rotate { name, grace, json } => {
            let grace_ms = age_ms("--grace", &grace)?;
            let secret = keys.rotate(&name, grace_ms)?;
            if json {
                println!(
                    "{}",
                    json!({"name": name, "key": secret, "grace_ms": grace_ms})
                );
            } else {
                println!("{secret}");
            }
        }
    }
    Ok(())
}

/// A time as `2026-12-01 08:30:00` (UTC); `–` when none.
fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
    })
    .map(|t| {
        format!(
            "{} {:02}:{:02}:{:02}",
            t.date(),
            t.hour(),
            t.minute(),
            t.second()
        )
    })
    .unwrap_or_else(|| "–".to_owned())
}
