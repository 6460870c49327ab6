//! Lists every preset with its exact parameter count, then builds the smallest HRM on the CPU
//! and times one ACT forward pass at each reasoning mode.
//!
//! `cargo run --release -p hrm-core --example presets`

use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use hrm_core::presets::{preset, presets};
use hrm_core::{Cycles, HaltPolicy};

fn main() {
    println!("{:<16} {:>14} {:>6} {:>8} {:>6}  description", "preset", "parameters", "d", "H+L", "ACT");
    for p in presets() {
        let c = &p.config;
        println!(
            "{:<16} {:>14} {:>6} {:>8} {:>6}  {}",
            p.name,
            c.num_params(),
            c.block.d_model,
            format!("{}+{}", c.h_layers, c.l_layers),
            c.halt_max_steps,
            p.description
        );
    }

    let config = preset("continual-char").expect("built-in preset").config;
    let device = Default::default();
    let model = config.init::<Flex>(0, &device);
    let (batch, seq) = (4, 80);
    let ids: Vec<i64> = (0..batch * seq).map(|i| (i % config.vocab_size) as i64).collect();
    let tokens = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [batch, seq]), &device);
    println!(
        "\ncontinual-char on CPU (flex), batch {batch} x {seq} tokens, up to {} ACT segments:",
        config.halt_max_steps
    );
    for (mode, h, l) in [("fast", 1, 1), ("normal", 2, 2), ("deep", 3, 2), ("extreme", 6, 4)] {
        let start = Instant::now();
        let logits = model.forward(tokens.clone(), Cycles { h, l }, &HaltPolicy::adaptive(config.halt_max_steps));
        let dims = logits.dims();
        let elapsed = start.elapsed();
        let tokens_per_s = (batch * seq) as f64 / elapsed.as_secs_f64();
        println!("  {mode:<8} N={h} T={l}: logits {dims:?} in {elapsed:.2?} ({tokens_per_s:.0} tokens/s)");
    }
}
