//! The quality curves of a [`Report`] as an SVG plot.

use std::path::Path;

use plotters::prelude::*;
use switchyard_router::data::ModelPair;
use switchyard_router::eval::Report;

use crate::OfflineError;

/// Quality against share of strong calls, one line per router, the two models as flat lines.
pub fn curves(
    path: &Path,
    report: &Report,
    name: &str,
    pair: &ModelPair,
) -> Result<(), OfflineError> {
    draw(path, report, name, pair).map_err(|e| OfflineError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn draw(
    path: &Path,
    report: &Report,
    name: &str,
    pair: &ModelPair,
) -> Result<(), Box<dyn std::error::Error>> {
    let series = [
        (format!("learned {name}"), &report.router, RED),
        ("random".to_owned(), &report.random, BLACK),
        ("prompt length".to_owned(), &report.length, BLUE),
        ("oracle".to_owned(), &report.oracle, GREEN),
    ];
    let all = series
        .iter()
        .flat_map(|(_, e, _)| e.curve.iter().map(|p| p.quality))
        .chain([report.weak_quality, report.strong_quality]);
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q), b.max(q)));
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Quality vs strong-model calls ({} examples)",
                report.examples
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..100f64, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc(format!("calls to {} (%)", pair.strong))
        .y_desc("mean quality")
        .draw()?;
    for (label, e, color) in series {
        chart
            .draw_series(LineSeries::new(
                e.curve.iter().map(|p| (100.0 * p.strong_share, p.quality)),
                color.stroke_width(2),
            ))?
            .label(format!("{label} (APGR {:.3})", e.apgr))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for (label, q) in [
        (format!("{} only", pair.weak), report.weak_quality),
        (format!("{} only", pair.strong), report.strong_quality),
    ] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, q), (100.0, q)],
                RGBColor(150, 150, 150),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(150, 150, 150)));
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
