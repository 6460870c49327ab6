//! The libraries together, through the `hrm` facade as an embedding program uses them:
//! train a run (hrm::train on hrm::data), export it, import the export into a new run, and
//! generate from both (hrm::infer) — the same text, token for token.

use std::path::Path;

use hrm::prelude::*;

/// A tiny corpus of repeated sentences, one document a line group.
fn write_corpus(dir: &Path) {
    let docs: Vec<String> = (0..300).map(|i| format!("{i} the cat sat on the mat. a dog ran in the park.")).collect();
    std::fs::write(dir.join("corpus.txt"), docs.join("\n<|endoftext|>\n")).unwrap();
}

#[test]
fn train_export_import_generate() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let block = BlockConfig::new(32, 4).with_max_seq_len(32);
    let model = ModelConfig::Hrm(HrmConfig::new(0, block, 1, 1).with_halt_max_steps(2));
    let data = DataConfig::new(vec![SourceSpec::local("corpus", "corpus.txt")], 24, 8);
    let run = RunConfig { eval_every: 10, checkpoint_every: 10, ..RunConfig::new(10) };
    let mut config = TrainConfig::new(model, data, run);
    let tokenizer = config.prepare_tokenizer(dir.path()).unwrap();
    let trained = RunDir::new(dir.path().join("run"));
    let device = Default::default();
    let summary = Trainer::<Autodiff<Flex>>::start(config, tokenizer, trained.clone(), dir.path(), device)
        .unwrap()
        .run(&TrainOptions::default())
        .unwrap();
    assert_eq!(summary.step, 10);

    let export = dir.path().join("export");
    let device = Default::default();
    hrm::train::export_run::<Flex>(&trained, &Default::default(), &export, None, &device).unwrap();
    let imported = RunDir::new(dir.path().join("imported"));
    hrm::train::import_export::<Flex>(&export, &imported, &device).unwrap();

    let settings = GenerationConfig { max_new_tokens: Some(24), stop_at_eos: false, ..Default::default() };
    let text_of = |run: &RunDir| {
        let loaded = load_run::<Flex>(run, &device).unwrap();
        generate(&loaded.model, &loaded.tokenizer, "the cat", &settings, &device, &mut |_| {}).unwrap()
    };
    let (original, copy) = (text_of(&trained), text_of(&imported));
    assert_eq!(original.tokens.len(), 24);
    assert_eq!(original.tokens, copy.tokens, "the imported run writes what the trained one does");
    assert_eq!(original.text, copy.text);
}
