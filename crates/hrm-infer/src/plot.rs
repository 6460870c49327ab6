//! The analysis as a PNG: state norms and changes per call, and halting steps per position.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::analysis::Analysis;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No TrueType font was found to write labels with.
    #[error("no TrueType font found for the plot's labels; set HRM_FONT to a .ttf file")]
    NoFont,
    /// Drawing or writing the file failed.
    #[error("cannot draw {path}: {reason}")]
    Draw {
        /// The PNG being written.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Draws `analysis` into the PNG `path` (1400×560).
pub fn plot_analysis(analysis: &Analysis, path: &Path) -> Result<(), PlotError> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw { path: path.display().to_string(), reason: e.to_string() };
    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(800);
    draw_trace(analysis, &left).map_err(|e| fail(&e))?;
    draw_halting(analysis, &right).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_trace(a: &Analysis, area: &Area) -> DrawResult {
    let calls = a.trace.len().max(1);
    let top = a.trace.iter().flat_map(|s| [s.norm, s.change]).fold(1e-6, f64::max) * 1.1;
    let title = format!("State per call of one segment (N={}, T={}, {} tokens)", a.h_cycles, a.l_cycles, a.tokens);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(calls as f64 - 0.5), 0.0..top)?;
    chart.configure_mesh().x_desc("call (L steps, then H, per cycle)").y_desc("mean over positions").draw()?;
    for (level, color) in [("L", BLUE), ("H", RED)] {
        let of = |f: fn(&crate::analysis::StateStep) -> f64| {
            a.trace.iter().filter(|s| s.level == level).map(move |s| (s.index as f64, f(s))).collect::<Vec<_>>()
        };
        let norms = of(|s| s.norm);
        chart
            .draw_series(LineSeries::new(norms.clone(), color.stroke_width(2)))?
            .label(format!("‖z_{level}‖"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(norms.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        let faded = color.mix(0.5);
        chart
            .draw_series(LineSeries::new(of(|s| s.change), faded.stroke_width(2)))?
            .label(format!("‖Δz_{level}‖"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], faded.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

fn draw_halting(a: &Analysis, area: &Area) -> DrawResult {
    let h = &a.halting;
    let positions = h.steps.len().max(1);
    let title = format!("ACT segments per position (mean {:.2}, cap {})", h.mean, h.max_steps);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(40)
        .build_cartesian_2d((0..positions).into_segmented(), 0u32..(h.max_steps as u32 + 1))?;
    chart.configure_mesh().x_desc("token position").y_desc("segments").draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(GREEN.mix(0.7).filled())
            .margin(1)
            .data(h.steps.iter().enumerate().map(|(i, &s)| (i, s))),
    )?;
    Ok(())
}

/// Registers a sans-serif font once: `$HRM_FONT`, else the first of the usual system fonts.
pub(crate) fn register_font() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        let candidates = std::env::var("HRM_FONT").into_iter().chain(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "/Library/Fonts/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(String::from),
        );
        candidates.filter_map(|p| std::fs::read(p).ok()).any(|bytes| {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    });
    if ok { Ok(()) } else { Err(PlotError::NoFont) }
}
