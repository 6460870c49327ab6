//! Loss curves of training runs: read from a run's `metrics.jsonl`, drawn into a PNG.

use std::path::Path;

use plotters::prelude::*;

use crate::plot::{PlotError, register_font};

/// The losses one run logged, against the tokens it had read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossCurve {
    /// The name shown in the legend.
    pub label: String,
    /// `(tokens read, LM loss)` of each logged training step.
    pub train: Vec<(f64, f64)>,
    /// `(tokens read, validation loss)` of each evaluation.
    pub validation: Vec<(f64, f64)>,
}

impl LossCurve {
    /// Parses the lines of a `metrics.jsonl`: step lines give `tokens` and `lm_loss`, evaluation
    /// lines `tokens` and `eval.loss`. Lines that are not JSON (a torn last line) are skipped.
    pub fn from_metrics(label: impl Into<String>, metrics: &str) -> Self {
        let mut curve = Self { label: label.into(), ..Self::default() };
        for line in metrics.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let Some(tokens) = value["tokens"].as_f64() else { continue };
            if let Some(loss) = value["eval"]["loss"].as_f64() {
                curve.validation.push((tokens, loss));
            } else if let Some(loss) = value["lm_loss"].as_f64() {
                curve.train.push((tokens, loss));
            }
        }
        curve
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.validation.is_empty()
    }
}

const COLORS: [RGBColor; 6] = [BLUE, RED, RGBColor(0, 140, 0), RGBColor(200, 120, 0), MAGENTA, RGBColor(0, 150, 150)];

/// Draws `curves` into the PNG `path` (1000×600): each run's training LM loss as a thin line and
/// its validation loss as a thick line with points, over the tokens read (millions).
pub fn plot_loss_curves(curves: &[LossCurve], title: &str, path: &Path) -> Result<(), PlotError> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw { path: path.display().to_string(), reason: e.to_string() };
    let points = || curves.iter().flat_map(|c| c.train.iter().chain(&c.validation));
    let x_max = points().map(|p| p.0 / 1e6).fold(1e-6, f64::max);
    let y_max = points().map(|p| p.1).filter(|y| y.is_finite()).fold(0.0, f64::max);
    let y_min = points().map(|p| p.1).filter(|y| y.is_finite()).fold(y_max, f64::min);
    let pad = ((y_max - y_min) * 0.05).max(0.01);
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max * 1.02, (y_min - pad).max(0.0)..y_max + pad)?;
        chart.configure_mesh().x_desc("tokens read (millions)").y_desc("loss (nats per token)").draw()?;
        for (curve, color) in curves.iter().zip(COLORS.iter().cycle()) {
            let scaled = |pts: &[(f64, f64)]| pts.iter().map(|&(x, y)| (x / 1e6, y)).collect::<Vec<_>>();
            let color = *color;
            chart
                .draw_series(LineSeries::new(scaled(&curve.train), color.mix(0.35).stroke_width(1)))?
                .label(format!("{} train", curve.label))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.mix(0.35).stroke_width(1)));
            let validation = scaled(&curve.validation);
            chart
                .draw_series(LineSeries::new(validation.clone(), color.stroke_width(3)))?
                .label(format!("{} validation", curve.label))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
            chart.draw_series(validation.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_evaluation_lines_are_told_apart_and_torn_lines_skipped() {
        let metrics = concat!(
            r#"{"step":10,"tokens":640,"lm_loss":4.5,"loss":4.7}"#,
            "\n",
            r#"{"step":10,"tokens":640,"eval":{"loss":4.4,"bits_per_byte":2.0}}"#,
            "\n",
            r#"{"step":20,"tokens":1280,"lm_loss":3.9}"#,
            "\n",
            r#"{"step":30,"tok"#,
        );
        let curve = LossCurve::from_metrics("run", metrics);
        assert_eq!(curve.train, vec![(640.0, 4.5), (1280.0, 3.9)]);
        assert_eq!(curve.validation, vec![(640.0, 4.4)]);
        assert!(!curve.is_empty());
    }

    #[test]
    fn a_plot_is_written_when_a_font_is_found() {
        let curve = LossCurve {
            label: "hrm".into(),
            train: vec![(1e5, 5.0), (2e5, 4.0), (3e5, 3.5)],
            validation: vec![(2e5, 4.2), (3e5, 3.7)],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        match plot_loss_curves(&[curve.clone(), LossCurve { label: "flat".into(), ..curve }], "test", &path) {
            Ok(()) => assert!(std::fs::metadata(&path).unwrap().len() > 1000, "the PNG is too small to hold a plot"),
            Err(PlotError::NoFont) => eprintln!("skipped: no TrueType font on this machine (set HRM_FONT)"),
            Err(e) => panic!("{e}"),
        }
    }
}
