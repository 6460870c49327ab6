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
