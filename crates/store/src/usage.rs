//! Usage: requests, tokens, cost and the baseline's counterfactual cost, summed by key, model,
//! route or day over a time window, straight from the request log.

use std::path::Path;

use rusqlite::params;
use serde::Serialize;

use crate::StoreError;

/// What usage is summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Key,
    Model,
    Route,
    /// The UTC calendar day.
    Day,
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "key" => Ok(GroupBy::Key),
            "model" => Ok(GroupBy::Model),
            "route" => Ok(GroupBy::Route),
            "day" => Ok(GroupBy::Day),
            other => Err(format!(
                "unknown group_by `{other}`; use key, model, route or day"
            )),
        }
    }
}

impl GroupBy {
    /// The SQL expression naming a row's group; rows without one get a label in brackets.
    fn column(self) -> &'static str {
        match self {
            GroupBy::Key => "COALESCE(key_name, '(no key)')",
            GroupBy::Model => "CASE model WHEN '' THEN '(none)' ELSE model END",
            GroupBy::Route => "COALESCE(route_name, '(unknown)')",
            GroupBy::Day => "strftime('%Y-%m-%d', created_at_ms / 1000.0, 'unixepoch')",
        }
    }
}

/// A usage question: a window of time (milliseconds since the Unix epoch, `from` inclusive,
/// `to` exclusive), one key's requests or all, and the grouping.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub key: Option<String>,
    pub group_by: GroupBy,
}

/// One group's sums. `saved_usd` is `baseline_cost_usd − cost_usd`: negative when a cascade
/// paid for two models.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageRow {
    pub group: String,
    pub requests: u64,
    pub cost_usd: f64,
    pub baseline_cost_usd: f64,
    pub saved_usd: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The groups, largest baseline cost first, and their total (whose `group` is "total").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub data: Vec<UsageRow>,
    pub total: UsageRow,
}

/// Sums the request log at `path`. Only requests for a model count (chat completions and
/// embeddings), not listings or feedback; rows from before accounting count their own cost as
/// their baseline, saving nothing.
pub fn usage(path: &Path, query: &UsageQuery) -> Result<Usage, StoreError> {
    let conn = crate::open(path)?;
    let sql = format!(
        "SELECT {group} AS g, COUNT(*), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(COALESCE(baseline_cost_usd, cost_usd)), 0),
                COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0)
         FROM requests
         WHERE requested_model != ''
           AND (?1 IS NULL OR created_at_ms >= ?1) AND (?2 IS NULL OR created_at_ms < ?2)
           AND (?3 IS NULL OR key_name = ?3)
         GROUP BY g ORDER BY 4 DESC, g",
        group = query.group_by.column()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![query.from_ms, query.to_ms, query.key], |r| {
        let cost_usd: f64 = r.get(2)?;
        let baseline_cost_usd: f64 = r.get(3)?;
        Ok(UsageRow {
            group: r.get(0)?,
            requests: r.get(1)?,
            cost_usd,
            baseline_cost_usd,
            saved_usd: baseline_cost_usd - cost_usd,
            prompt_tokens: r.get(4)?,
            completion_tokens: r.get(5)?,
        })
    })?;
    let data: Vec<UsageRow> = rows.collect::<Result<_, _>>()?;
    let total = data.iter().fold(
        UsageRow {
            group: "total".into(),
            ..UsageRow::default()
        },
        |mut t, r| {
            t.requests += r.requests;
            t.cost_usd += r.cost_usd;
            t.baseline_cost_usd += r.baseline_cost_usd;
            t.saved_usd += r.saved_usd;
            t.prompt_tokens += r.prompt_tokens;
            t.completion_tokens += r.completion_tokens;
            t
        },
    );
    Ok(Usage { data, total })
}

/// A point in time as milliseconds since the Unix epoch: Unix seconds (`1764547200`), a date
/// (`2026-12-01`, midnight UTC) or an ISO 8601 time (`2026-12-01T08:30:00Z`, `…+01:00`).
/// SQLite's own date functions read the text, so the store and its queries agree on it.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return seconds
            .checked_mul(1000)
            .ok_or_else(|| format!("time `{text}` is out of range"));
    }
    let conn = rusqlite::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let ms: Option<f64> = conn
        .query_row(
            "SELECT (julianday(?1) - 2440587.5) * 86400000.0",
            [text],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    ms.map(|ms| ms.round() as i64).ok_or_else(|| {
        format!("cannot read time `{text}`; write Unix seconds, 2026-12-01 or 2026-12-01T08:30:00Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RequestLog, RequestRecord};

    fn row(
        id: &str,
        at_ms: i64,
        model: &str,
        key: Option<&str>,
        cost: f64,
        baseline: Option<f64>,
    ) -> RequestRecord {
        RequestRecord {
            id: id.into(),
            created_at_ms: at_ms,
            requested_model: "auto".into(),
            model: model.into(),
            route: "the router chose it".into(),
            route_name: Some("support".into()),
            status: 200,
            prompt_tokens: 100,
            completion_tokens: 10,
            cost_usd: cost,
            baseline_cost_usd: baseline,
            key_name: key.map(str::to_owned),
            ..Default::default()
        }
    }

    fn log_of(rows: Vec<RequestRecord>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let log = RequestLog::open(&path).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            for r in rows {
                log.record(r).await;
            }
            log.close().await;
        });
        (dir, path)
    }

    const DAY: i64 = 86_400_000;
    const DEC_1: i64 = 1_764_547_200_000;

    fn query(group_by: GroupBy) -> UsageQuery {
        UsageQuery {
            from_ms: None,
            to_ms: None,
            key: None,
            group_by,
        }
    }

    #[test]
    fn sums_by_model_with_savings_against_the_baseline() {
        let (_dir, path) = log_of(vec![
            row("a", DEC_1, "small", Some("team-a"), 0.001, Some(0.010)),
            row("b", DEC_1 + 1, "small", Some("team-b"), 0.001, Some(0.010)),
            // A cascade that escalated paid for both models: more than the baseline alone.
            row("c", DEC_1 + 2, "large", Some("team-a"), 0.011, Some(0.010)),
            // Before accounting: its own cost is its baseline.
            row("d", DEC_1 + 3, "large", None, 0.010, None),
            // A listing, not a request for a model.
            RequestRecord {
                requested_model: String::new(),
                ..row("e", DEC_1 + 4, "", None, 0.0, None)
            },
        ]);
        let u = usage(&path, &query(GroupBy::Model)).unwrap();
        let groups: Vec<(&str, u64)> = u
            .data
            .iter()
            .map(|r| (r.group.as_str(), r.requests))
            .collect();
        assert_eq!(groups, vec![("large", 2), ("small", 1 + 1)]);
        let large = &u.data[0];
        assert!((large.cost_usd - 0.021).abs() < 1e-12);
        assert!((large.baseline_cost_usd - 0.020).abs() < 1e-12);
        assert!(
            (large.saved_usd + 0.001).abs() < 1e-12,
            "a cascade that paid twice saves less than nothing"
        );
        assert!((u.data[1].saved_usd - 0.018).abs() < 1e-12);
        assert_eq!(u.total.requests, 4);
        assert_eq!(
            (u.total.prompt_tokens, u.total.completion_tokens),
            (400, 40)
        );
        assert!((u.total.saved_usd - 0.017).abs() < 1e-12);
    }

    #[test]
    fn a_window_a_key_and_each_grouping() {
        let (_dir, path) = log_of(vec![
            row("a", DEC_1, "small", Some("team-a"), 0.001, Some(0.010)),
            row(
                "b",
                DEC_1 + DAY,
                "small",
                Some("team-b"),
                0.001,
                Some(0.010),
            ),
            row(
                "c",
                DEC_1 + 2 * DAY,
                "large",
                Some("team-a"),
                0.010,
                Some(0.010),
            ),
        ]);
        let days = usage(&path, &query(GroupBy::Day)).unwrap();
        let mut names: Vec<&str> = days.data.iter().map(|r| r.group.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["2025-12-01", "2025-12-02", "2025-12-03"]);
        let keys = usage(&path, &query(GroupBy::Key)).unwrap();
        let teams: Vec<(&str, u64)> = keys
            .data
            .iter()
            .map(|r| (r.group.as_str(), r.requests))
            .collect();
        assert_eq!(teams, vec![("team-a", 2), ("team-b", 1)]);
        let routes = usage(&path, &query(GroupBy::Route)).unwrap();
        assert_eq!(routes.data.len(), 1);
        assert_eq!(routes.data[0].group, "support");

        let window = UsageQuery {
            from_ms: Some(DEC_1 + DAY),
            to_ms: Some(DEC_1 + 2 * DAY),
            ..query(GroupBy::Model)
        };
        assert_eq!(
            usage(&path, &window).unwrap().total.requests,
            1,
            "from is inclusive, to exclusive"
        );
        let one_key = UsageQuery {
            key: Some("team-a".into()),
            ..query(GroupBy::Model)
        };
        assert_eq!(usage(&path, &one_key).unwrap().total.requests, 2);
    }

    #[test]
    fn times_read_as_seconds_dates_or_iso_8601() {
        assert_eq!(parse_time("1764547200"), Ok(DEC_1));
        assert_eq!(parse_time("2025-12-01"), Ok(DEC_1));
        assert_eq!(parse_time("2025-12-01T01:00:00Z"), Ok(DEC_1 + 3_600_000));
        assert_eq!(
            parse_time("2025-12-01T02:00:00+01:00"),
            Ok(DEC_1 + 3_600_000)
        );
        let err = parse_time("last tuesday").unwrap_err();
        assert!(
            err.contains("last tuesday") && err.contains("2026-12-01"),
            "{err}"
        );
    }
}
