//! `switchyard usage`: what the gateway's traffic cost, what it would have cost on the
//! `[accounting]` baseline model, and the difference, from the request log.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use switchyard_store::{GroupBy, Usage, UsageQuery};

#[derive(clap::Args)]
pub struct Args {
    /// The config naming the store ([store] path); without it: switchyard.db here.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Only requests this recent: 30m, 24h, 7d, 2w.
    #[arg(long, conflicts_with = "from")]
    since: Option<String>,
    /// Only requests from this time on (Unix seconds, 2026-12-01, 2026-12-01T08:30:00Z).
    #[arg(long)]
    from: Option<String>,
    /// Only requests before this time.
    #[arg(long)]
    to: Option<String>,
    /// key, model, route or day.
    #[arg(long, default_value = "model")]
    group_by: String,
    /// Print one JSON object (`{"data": [...], "total": {...}}`, as GET /v1/usage) instead of a table.
    #[arg(long)]
    json: bool,
}

/// The store the config at `config` names, or the default one here.
pub fn store_of(config: Option<&Path>) -> Result<PathBuf> {
    let config = config.map(switchyard_server::Config::load).transpose()?;
    Ok(crate::store_path(config.as_ref()))
}

pub fn run(args: Args) -> Result<()> {
    let store = store_of(args.config.as_deref())?;
    if !store.is_file() {
        bail!(
            "no request log at {}: serve some traffic first, or pass the --config whose [store] path names it",
            store.display()
        );
    }
    let group_by: GroupBy = args.group_by.parse().map_err(anyhow::Error::msg)?;
    let from_ms = match (&args.since, &args.from) {
        (Some(age), _) => Some(switchyard_store::RequestRecord::now_ms() - age_ms("--since", age)?),
        (None, Some(t)) => Some(switchyard_store::parse_time(t).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    let to_ms = args
        .to
        .as_deref()
        .map(switchyard_store::parse_time)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let query = UsageQuery {
        from_ms,
        to_ms,
        key: None,
        group_by,
    };
    let usage = switchyard_store::usage(&store, &query)
        .with_context(|| format!("reading usage from {}", store.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
    } else {
        print!("{}", table(&usage));
    }
    Ok(())
}

/// `7d` (given as `option`) as milliseconds. Written by hand: four units are all it takes.
pub fn age_ms(option: &str, age: &str) -> Result<i64> {
    let unit = age.chars().last().unwrap_or(' ');
    let scale = match unit {
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        'w' => 7 * 86_400_000,
        _ => bail!("{option} {age}: write a number and a unit, m, h, d or w (30m, 24h, 7d, 2w)"),
    };
    let n: i64 = age[..age.len() - 1]
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .with_context(|| {
            format!("--since {age}: write a number and a unit, m, h, d or w (30m, 24h, 7d, 2w)")
        })?;
    Ok(n.saturating_mul(scale))
}

fn table(usage: &Usage) -> String {
    let mut out = format!(
        "{:<24} {:>9} {:>12} {:>12} {:>12} {:>7} {:>12} {:>12}\n",
        "group", "requests", "cost USD", "baseline", "saved", "saved", "prompt tok", "compl. tok"
    );
    for row in usage.data.iter().chain([&usage.total]) {
        let share = if row.baseline_cost_usd > 0.0 {
            format!("{:.1} %", 100.0 * row.saved_usd / row.baseline_cost_usd)
        } else {
            "–".to_owned()
        };
        out.push_str(&format!(
            "{:<24} {:>9} {:>12.6} {:>12.6} {:>12.6} {:>7} {:>12} {:>12}\n",
            row.group,
            row.requests,
            row.cost_usd,
            row.baseline_cost_usd,
            row.saved_usd,
            share,
            row.prompt_tokens,
            row.completion_tokens
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_with_their_unit_and_refuse_without_one() {
        assert_eq!(age_ms("--since", "30m").unwrap(), 1_800_000);
        assert_eq!(age_ms("--since", "7d").unwrap(), 604_800_000);
        assert_eq!(age_ms("--since", "2w").unwrap(), 1_209_600_000);
        for bad in ["7", "d", "-1d", "7y", ""] {
            let err = age_ms("--since", bad).unwrap_err().to_string();
            assert!(err.contains("30m, 24h, 7d, 2w"), "{bad}: {err}");
        }
    }
}
