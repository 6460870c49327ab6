//! The L/H state trace, halting per position, and the PNG.

use burn::tensor::{Int, Tensor, TensorData};
use hrm_core::{BlockConfig, HrmConfig, ReasoningMode, Thinking};
use hrm_infer::{PlotError, analyze, plot_analysis};

type B = burn::backend::Flex;

#[test]
fn traces_every_call_and_counts_halting_per_position() {
    let device = Default::default();
    let block = BlockConfig::new(32, 4).with_max_seq_len(16);
    let model = HrmConfig::new(20, block, 1, 1).with_halt_max_steps(3).init::<B>(4, &device);
    let ids: Vec<i64> = (0..10).map(|i| (i * 3 % 20) as i64).collect();
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, 10]), &device);
    let thinking = Thinking { h_cycles: Some(2), l_cycles: Some(3), ..Thinking::default() };
    let a = analyze(&model, tokens.clone(), &thinking);
    let levels: String = a.trace.iter().map(|s| s.level.as_str()).collect();
    assert_eq!(levels, "LLLHLLLH", "N×T L calls and N H calls, in order");
    assert_eq!(a.trace.iter().map(|s| (s.cycle, s.step)).collect::<Vec<_>>()[3..5], [(0, 0), (1, 0)]);
    for s in &a.trace {
        // Every block ends in an RMSNorm without gain, so ‖z‖ ≈ sqrt(d_model).
        assert!((s.norm - 32f64.sqrt()).abs() < 0.01, "{s:?}");
        assert!(s.change > 0.0 && s.position_norms.len() == 10);
    }
    assert_eq!(a.halting.steps.len(), 10);
    assert_eq!(a.halting.histogram.iter().sum::<usize>(), 10);
    // The untrained Q head never prefers halting, so every position runs the cap.
    assert_eq!(a.halting.histogram, [0, 0, 10]);
    assert_eq!((a.h_cycles, a.l_cycles), (2, 3));

    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("analysis.png");
    let deep = analyze(&model, tokens, &Thinking::mode(ReasoningMode::Deep));
    match plot_analysis(&deep, &png) {
        Err(PlotError::NoFont) => eprintln!("skipping the PNG check: no TrueType font on this machine (set HRM_FONT)"),
        other => {
            other.unwrap();
            let bytes = std::fs::read(&png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} bytes", bytes.len());
        }
    }
}
