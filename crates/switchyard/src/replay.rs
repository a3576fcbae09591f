//! `switchyard replay`: every model of the ladder answers a workload through the gateway, the
//! answers are graded, and every router is replayed offline on them (`switchyard_replay`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use switchyard_replay::report::{Figures, Options};
use switchyard_replay::{AnswerCache, Report, Target, Workload};
use switchyard_server::Config;

#[derive(clap::Args)]
pub struct Args {
    /// The gateway's config: its models, routes, knowledge bases, guard and prices.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The workload: JSONL rows of `messages` or `prompt`, `grade`, and optional `group`,
    /// `route`, `max_tokens`, `temperature`. Or the request log (the SQLite file of [store]
    /// path): then the deployment's live operating point is reported, calling no model.
    #[arg(long)]
    data: PathBuf,
    /// Where the answers are cached (answers.jsonl) and the report written (needed with a
    /// workload).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The models to ask, small first, large last (default: the models the routes use, by
    /// price).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Requests in flight at once (local models batch them in their engine slots).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Longest answer when a row does not say.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Hold out this share of the requests (by group): thresholds are chosen on the rest
    /// and every figure is reported on these.
    #[arg(long)]
    split: Option<f64>,
    /// Seed of the split and of the random router.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The share of all-large quality a router's chosen threshold must keep.
    #[arg(long, default_value_t = 0.95)]
    target_quality: f64,
    /// Print the report as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<()> {
    let config = crate::load_config(args.config.as_deref())?;
    let models = models(&config, &args.models)?;
    if switchyard_offline::labelled::is_request_log(&args.data) {
        return live(&config, &args, &models);
    }
    let Some(out) = args.out.as_deref() else {
        bail!("--out DIR is needed with a workload: the answers are cached there");
    };
    let workload = Workload::load(&args.data)?;
    if args.split.is_some_and(|s| !(s > 0.0 && s < 1.0)) {
        bail!("--split is the held-out share: a number between 0 and 1, such as 0.5");
    }
    let targets: Vec<Target> = models
        .iter()
        .map(|m| Target {
            name: m.clone(),
            local: config.models[m].is_local(),
        })
        .collect();
    let mut cache = AnswerCache::open(out)?;
    let wanted = workload.items.len() * targets.len();
    let missing = workload
        .items
        .iter()
        .flat_map(|i| targets.iter().map(move |t| (i, t)))
        .any(|(i, t)| cache.get(&i.id, &t.name).is_none());
    if missing {
        let gateway = crate::Local::start(&config).await?;
        let bar = ProgressBar::new(wanted as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} collecting [{bar:30}] {pos}/{len} answers, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = std::time::Instant::now();
        let collected = switchyard_replay::collect(
            &switchyard_replay::Gateway {
                base: &gateway.base,
                api_key: config.server.api_keys.first().map(String::as_str),
                concurrency: args.concurrency,
                max_tokens: args.max_tokens,
            },
            &workload.items,
            &targets,
            &mut cache,
            &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )
        .await;
        bar.finish_and_clear();
        gateway.stop().await?;
        let collected = collected?;
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        eprintln!(
            "collected {} answers in {:.1} min ({:.1} a minute); {} were cached",
            collected.asked - collected.failed.len(),
            minutes,
            (collected.asked - collected.failed.len()) as f64 / minutes.max(1e-9),
            collected.cached
        );
        if let Some((line, model, error)) = collected.failed.first() {
            bail!(
                "{} requests failed and are not cached (run again to retry them); the first, line {line} to {model}: {error}",
                collected.failed.len()
            );
        }
    }
    let calibration = match &config.router.calibration {
        Some(path) => switchyard_server::load_calibration(path)?,
        None => switchyard_router::confidence::Calibration::builtin(),
    };
    let threshold = config
        .routes
        .iter()
        .find(|r| r.cascade)
        .and_then(|r| r.confidence_threshold)
        .unwrap_or(calibration.threshold);
    let report = switchyard_replay::report(
        &workload.items,
        &cache,
        &Options {
            models: &models,
            calibration: targets[0].local.then_some((&calibration, threshold)),
            target_quality: args.target_quality,
            held_out: args.split,
            seed: args.seed,
        },
    )?;
    let sides = args
        .split
        .map(|share| switchyard_replay::report::held_out(&workload.items, share, args.seed));
    let labels =
        switchyard_replay::labels::write(out, &workload.items, &cache, &models, sides.as_deref())?;
    for path in labels {
        eprintln!("labels: {}", path.display());
    }
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(out.join("report.json"), &json)
        .with_context(|| format!("cannot write {}", out.display()))?;
    let svg = out.join("replay.svg");
    plot(&svg, &report)?;
    if args.json {
        println!("{json}");
    } else {
        print_table(&report, &svg);
    }
    Ok(())
}

/// The live operating point of the request log's routed traffic.
fn live(config: &Config, args: &Args, models: &[String]) -> Result<()> {
    let requests = switchyard_store::read_requests(&args.data)?;
    let feedback = switchyard_store::read_feedback(&args.data)?;
    let (small, large) = (&models[0], &models[models.len() - 1]);
    let price = config.models[large].price;
    let point = switchyard_replay::live::operating_point(
        &requests,
        &feedback,
        small,
        (price.input, price.output),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&point)?);
        return Ok(());
    }
    println!(
        "{}: {} routed requests (\"model\": \"auto\"), small model {small}, large {large}",
        args.data.display(),
        point.requests
    );
    println!(
        "answered small {:.1}%; cost ${:.4} against ${:.4} all-large (saved {:.1}%); latency p50 {:.0} ms, p95 {:.0} ms",
        100.0 * point.small_share,
        point.cost_usd,
        point.all_large_cost_usd,
        100.0 * point.saving_vs_large,
        point.latency_p50_ms,
        point.latency_p95_ms
    );
    if let Some(rate) = point.escalation_rate {
        println!(
            "cascade: {} requests, {:.1}% escalated",
            point.cascade_requests,
            100.0 * rate
        );
    }
    for (name, m) in &point.models {
        println!(
            "  {name:<16} {:>6} requests {:>6.1}%  ${:.4}  feedback {}",
            m.requests,
            100.0 * m.share,
            m.cost_usd,
            m.feedback_mean.map_or("-".to_owned(), |f| format!(
                "{f:.2} ({} rated)",
                m.feedback_n
            ))
        );
    }
    Ok(())
}

/// `--models`, checked against the config; else the models the routes and the default use,
/// cheapest first.
fn models(config: &Config, asked: &[String]) -> Result<Vec<String>> {
    let configured: Vec<&str> = config.models.keys().map(String::as_str).collect();
    if !asked.is_empty() {
        if let Some(m) = asked.iter().find(|m| !config.models.contains_key(*m)) {
            bail!(
                "--models: `{m}` is not configured; use some of: {}",
                configured.join(", ")
            );
        }
        if asked.len() < 2 {
            bail!("--models needs at least two models, small first, large last");
        }
        return Ok(asked.to_vec());
    }
    let mut used: Vec<String> = config
        .routes
        .iter()
        .flat_map(|r| r.target.iter().chain(&r.ladder).chain(&r.escalate_to))
        .cloned()
        .chain(config.default_model().map(str::to_owned))
        .collect();
    used.sort();
    used.dedup();
    let price = |m: &String| config.models[m].price.input + config.models[m].price.output;
    used.sort_by(|a, b| price(a).total_cmp(&price(b)).then(a.cmp(b)));
    if used.len() < 2 {
        bail!(
            "the config's routes use one model ({}): name two or more with --models small,large",
            used.join(", ")
        );
    }
    Ok(used)
}

fn print_table(report: &Report, svg: &Path) {
    println!(
        "{} requests ({} to choose thresholds on), models {}; {} left out for a missing answer",
        report.requests,
        report.train_requests,
        report.models.join(" -> "),
        report.unanswered
    );
    println!(
        "{:<18} {:>7} {:>8} {:>9} {:>10} {:>7} {:>8} {:>8} {:>6} {:>6}",
        "router",
        "small",
        "quality",
        "vs large",
        "cost $",
        "saved",
        "p50 ms",
        "p95 ms",
        "APGR",
        "CPT95"
    );
    let opt = |v: Option<f64>, pct: bool| match v {
        Some(v) if pct => format!("{:.1}%", 100.0 * v),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    };
    for (name, f) in &report.routers {
        let Figures {
            small_share,
            quality,
            quality_vs_large,
            cost_usd,
            saving_vs_large,
            latency_p50_ms,
            latency_p95_ms,
            apgr,
            cpt95,
            ..
        } = f;
        println!(
            "{name:<18} {:>7} {:>8} {:>9} {:>10.4} {:>7} {:>8.0} {:>8.0} {:>6} {:>6}",
            format!("{:.1}%", 100.0 * small_share),
            opt(*quality, false),
            opt(*quality_vs_large, true),
            cost_usd,
            format!("{:.1}%", 100.0 * saving_vs_large),
            latency_p50_ms,
            latency_p95_ms,
            opt(*apgr, false),
            opt(*cpt95, true),
        );
    }
    println!("plot: {}", svg.display());
}

/// Quality against large-model share, one line per scoring router, a point per fixed one.
fn plot(path: &Path, report: &Report) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Quality vs large-model share ({} requests)",
                report.requests
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..100f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "requests answered by {} (%)",
            report.models.last().map(String::as_str).unwrap_or("large")
        ))
        .y_desc("mean grade")
        .draw()?;
    let colors = [RED, BLUE, GREEN, BLACK, MAGENTA, CYAN];
    for (i, (name, curve)) in report.curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (100.0 * p.strong_share, p.quality)),
                color.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for (name, f) in &report.routers {
        if let Some(q) = f.quality {
            let at = (100.0 * f.large_share, q);
            chart.draw_series([Circle::new(at, 4, BLACK.filled())])?;
            chart.draw_series([Text::new(name.clone(), at, ("sans-serif", 12))])?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
