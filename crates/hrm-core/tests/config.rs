//! Config validation, serialisation, presets and their parameter counts, and the losses.

mod common;

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use hrm_core::presets::{T5_VOCAB, preset, presets};
use hrm_core::{BlockConfig, ConfigError, FlatConfig, HrmConfig, LossKind, ModelConfig, cross_entropy};

fn invalid_field(result: Result<(), ConfigError>) -> &'static str {
    match result {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid-field error, got {other:?}"),
    }
}

#[test]
fn validation_names_the_bad_field() {
    let ok = tiny_hrm(2);
    assert_eq!(ok.validate(), Ok(()));
    let mut c = ok.clone();
    c.block.n_heads = 3;
    assert_eq!(invalid_field(c.validate()), "d_model");
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("d_model") && err.contains("32") && err.contains("n_heads (3)"), "{err}");
    assert_eq!(invalid_field(ok.clone().with_h_cycles(0).validate()), "h_cycles");
    assert_eq!(invalid_field(ok.clone().with_l_cycles(0).validate()), "l_cycles");
    assert_eq!(invalid_field(HrmConfig { vocab_size: 0, ..ok.clone() }.validate()), "vocab_size");
    assert_eq!(invalid_field(ok.clone().with_halt_max_steps(0).validate()), "halt_max_steps");
    assert_eq!(invalid_field(ok.clone().with_halt_exploration_prob(1.5).validate()), "halt_exploration_prob");
    let odd_heads = HrmConfig { block: BlockConfig::new(24, 8), ..ok.clone() };
    assert_eq!(invalid_field(odd_heads.validate()), "n_heads");
    let flat = FlatConfig { n_layers: 0, ..tiny_flat() };
    assert_eq!(invalid_field(ModelConfig::Flat(flat).validate()), "n_layers");
}

#[test]
fn model_config_round_trips_through_toml_with_an_arch_tag() {
    let config = ModelConfig::Hrm(tiny_hrm(4).with_loss(LossKind::Stablemax));
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("arch = \"hrm\"") && text.contains("loss = \"stablemax\""), "{text}");
    assert_eq!(toml::from_str::<ModelConfig>(&text).unwrap(), config);
    let err = toml::from_str::<ModelConfig>("arch = \"rnn\"").unwrap_err().to_string();
    assert!(err.contains("rnn"), "{err}");
    // Only the required fields: everything else takes its default.
    let minimal = "arch = \"hrm\"\nvocab_size = 100\nh_layers = 2\nl_layers = 2\n[block]\nd_model = 64\nn_heads = 4\n";
    let parsed = toml::from_str::<ModelConfig>(minimal).unwrap();
    assert_eq!(parsed, ModelConfig::Hrm(HrmConfig::new(100, BlockConfig::new(64, 4), 2, 2)));
    let err = toml::from_str::<ModelConfig>(&format!("{minimal}n_layerz = 3\n")).unwrap_err().to_string();
    assert!(err.contains("n_layerz"), "{err}");
}

#[test]
fn preset_parameter_counts_are_exact() {
    println!("{:<16} {:>14} {:>14} {:>8}", "preset", "ours", "stated", "ratio");
    for p in presets() {
        p.config.validate().unwrap();
        let ours = p.config.num_params();
        match p.stated_params {
            Some(stated) => println!("{:<16} {:>14} {:>14} {:>8.2}", p.name, ours, stated, ours as f64 / stated as f64),
            None => println!("{:<16} {:>14} {:>14} {:>8}", p.name, ours, "-", "-"),
        }
    }
    // Building the two small presets counts the same parameters as the formula
    // (plus the two fixed, untrained initial-state vectors).
    let device = Default::default();
    for name in ["micro-10m", "continual-char"] {
        let config = preset(name).unwrap().config;
        let model = config.init::<Cpu>(0, &device);
        assert_eq!(model.num_params(), config.num_params() + 2 * config.block.d_model, "{name}");
    }
    let micro = preset("Micro-10M").unwrap().config;
    assert_eq!(micro.vocab_size, T5_VOCAB);
    // 256 wide, expansion 4 → SwiGLU width round(682.7) rounded up to 768; 6 blocks; untied head.
    assert_eq!(micro.num_params(), 2 * 32_100 * 256 + 6 * (4 * 256 * 256 + 3 * 256 * 768) + 2 * 256 + 2);
    let flat = FlatConfig::new(100, BlockConfig::new(64, 4), 2);
    assert_eq!(flat.init::<Cpu>(0, &device).num_params(), flat.num_params());
    assert!(matches!(preset("huge"), Err(ConfigError::UnknownPreset { .. })));
}

#[test]
fn stablemax_matches_a_hand_computed_value() {
    let device = Default::default();
    // s(2) = 3, s(-1) = 1/2, s(0.5) = 1.5; p(label 0) = 3 / 5.
    let logits = Tensor::<Cpu, 3>::from_data(TensorData::new(vec![2.0f32, -1.0, 0.5], [1, 1, 3]), &device);
    let label = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![0i64], [1, 1]), &device);
    let loss = values(cross_entropy(LossKind::Stablemax, logits.clone(), label.clone()))[0];
    assert!((loss - (5.0f32 / 3.0).ln()).abs() < 1e-6, "stablemax loss {loss}");
    // Softmax: -log(e² / (e² + e⁻¹ + e^0.5)).
    let soft = values(cross_entropy(LossKind::Softmax, logits, label))[0];
    let expected = -(2.0f32.exp() / (2.0f32.exp() + (-1.0f32).exp() + 0.5f32.exp())).ln();
    assert!((soft - expected).abs() < 1e-6, "softmax loss {soft} vs {expected}");
}

#[test]
fn ignored_labels_contribute_nothing() {
    let device = Default::default();
    let logits = Tensor::<Cpu, 3>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [1, 2, 2]), &device);
    let labels = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(vec![0i64, hrm_core::IGNORE_LABEL], [1, 2]), &device);
    let per_position = values(cross_entropy(LossKind::Softmax, logits.clone(), labels.clone()));
    assert_eq!(per_position[1], 0.0);
    let mean = values(hrm_core::mean_cross_entropy(LossKind::Softmax, logits, labels))[0];
    assert!((mean - per_position[0]).abs() < 1e-7);
}
