//! Every training config in configs/train parses and validates.

use std::path::Path;

use hrm_train::TrainConfig;

#[test]
fn every_training_config_parses_and_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/train");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut config = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // `vocab_size = 0` means "from the tokenizer", which a run sets before validating.
        if config.model.vocab_size() == 0 {
            config.model.set_vocab_size(100);
        }
        config.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        count += 1;
    }
    assert!(count >= 3);
}

#[test]
fn every_size_preset_has_a_config_with_its_exact_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/train");
    for preset in hrm_core::presets::presets() {
        let path = dir.join(format!("{}.toml", preset.name));
        let config = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let hrm_core::ModelConfig::Hrm(model) = config.model else { panic!("{}: not an HRM", path.display()) };
        let mut want = preset.config.clone();
        // The char preset's vocabulary comes from its tokenizer at run time.
        if model.vocab_size == 0 {
            want.vocab_size = 0;
        }
        assert_eq!(model, want, "{} drifted from preset {}", path.display(), preset.name);
    }
}
