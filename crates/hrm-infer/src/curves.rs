//! Loss curves of training runs: read from a run's `metrics.jsonl`, drawn into a PNG.

use std::path::Path;

use plotters::prelude::*;

use crate::plot::{PlotError, register_font};

/// What the x axis of a loss plot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Axis {
    /// Tokens read, in millions.
    #[default]
    Tokens,
    /// Optimiser steps.
    Steps,
    /// Share of the run's steps, in percent: for runs given equal FLOPs, the share of the budget.
    Progress,
}

impl Axis {
    fn description(self) -> &'static str {
        match self {
            Self::Tokens => "tokens read (millions)",
            Self::Steps => "optimiser steps",
            Self::Progress => "share of the run's steps (%)",
        }
    }
}

/// The losses one run logged, against the tokens it had read and the step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossCurve {
    /// The name shown in the legend.
    pub label: String,
    /// `(step, tokens read, LM loss)` of each logged training step.
    pub train: Vec<(f64, f64, f64)>,
    /// `(step, tokens read, validation loss)` of each evaluation.
    pub validation: Vec<(f64, f64, f64)>,
}

impl LossCurve {
    /// Parses the lines of a `metrics.jsonl`: step lines give `step`, `tokens` and `lm_loss`,
    /// evaluation lines `step`, `tokens` and `eval.loss`. Lines that are not JSON (a torn last
    /// line) are skipped.
    pub fn from_metrics(label: impl Into<String>, metrics: &str) -> Self {
        let mut curve = Self { label: label.into(), ..Self::default() };
        for line in metrics.lines() {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let (Some(step), Some(tokens)) = (value["step"].as_f64(), value["tokens"].as_f64()) else { continue };
            if let Some(loss) = value["eval"]["loss"].as_f64() {
                curve.validation.push((step, tokens, loss));
            } else if let Some(loss) = value["lm_loss"].as_f64() {
                curve.train.push((step, tokens, loss));
            }
        }
        curve
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.validation.is_empty()
    }

    /// `(x, loss)` points of `points` (train or validation) on `axis`.
    fn on(&self, axis: Axis, points: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
        let last_step = self.train.iter().chain(&self.validation).map(|p| p.0).fold(1.0, f64::max);
        let x = |&(step, tokens, _): &(f64, f64, f64)| match axis {
            Axis::Tokens => tokens / 1e6,
            Axis::Steps => step,
            Axis::Progress => 100.0 * step / last_step,
        };
        points.iter().map(|p| (x(p), p.2)).collect()
    }
}

const COLORS: [RGBColor; 6] = [BLUE, RED, RGBColor(0, 140, 0), RGBColor(200, 120, 0), MAGENTA, RGBColor(0, 150, 150)];

/// Draws `curves` into the PNG `path` (1000×600): each run's training LM loss as a thin line and
/// its validation loss as a thick line with points, over `axis`.
pub fn plot_loss_curves(curves: &[LossCurve], axis: Axis, title: &str, path: &Path) -> Result<(), PlotError> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw { path: path.display().to_string(), reason: e.to_string() };
    let all: Vec<(f64, f64)> =
        curves.iter().flat_map(|c| [c.on(axis, &c.train), c.on(axis, &c.validation)]).flatten().collect();
    let x_max = all.iter().map(|p| p.0).fold(1e-6, f64::max);
    let y_max = all.iter().map(|p| p.1).filter(|y| y.is_finite()).fold(0.0, f64::max);
    let y_min = all.iter().map(|p| p.1).filter(|y| y.is_finite()).fold(y_max, f64::min);
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
        chart.configure_mesh().x_desc(axis.description()).y_desc("loss (nats per token)").draw()?;
        for (curve, color) in curves.iter().zip(COLORS.iter().cycle()) {
            let color = *color;
            chart
                .draw_series(LineSeries::new(curve.on(axis, &curve.train), color.mix(0.35).stroke_width(1)))?
                .label(format!("{} train", curve.label))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.mix(0.35).stroke_width(1)));
            let validation = curve.on(axis, &curve.validation);
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
        assert_eq!(curve.train, vec![(10.0, 640.0, 4.5), (20.0, 1280.0, 3.9)]);
        assert_eq!(curve.validation, vec![(10.0, 640.0, 4.4)]);
        assert!(!curve.is_empty());
        assert_eq!(curve.on(Axis::Progress, &curve.validation), vec![(50.0, 4.4)]);
        assert_eq!(curve.on(Axis::Tokens, &curve.train)[1], (0.00128, 3.9));
    }

    #[test]
    fn a_plot_is_written_when_a_font_is_found() {
        let curve = LossCurve {
            label: "hrm".into(),
            train: vec![(1.0, 1e5, 5.0), (2.0, 2e5, 4.0), (3.0, 3e5, 3.5)],
            validation: vec![(2.0, 2e5, 4.2), (3.0, 3e5, 3.7)],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let curves = [curve.clone(), LossCurve { label: "flat".into(), ..curve }];
        match plot_loss_curves(&curves, Axis::Steps, "test", &path) {
            Ok(()) => assert!(std::fs::metadata(&path).unwrap().len() > 1000, "the PNG is too small to hold a plot"),
            Err(PlotError::NoFont) => eprintln!("skipped: no TrueType font on this machine (set HRM_FONT)"),
            Err(e) => panic!("{e}"),
        }
    }
}
