//! Sweeps: the standard plan's shape, and a report that validates against docs/schemas/sweep.schema.json.

use hrm_core::{BlockConfig, HrmConfig, Model};
use hrm_data::{CharTokenizer, Tokenizer};
use hrm_infer::{SweepPlan, SweepReport, TrigramProfile, WordVocabulary, run_sweep};

type B = burn::backend::Flex;

#[test]
fn the_standard_plan_is_ten_prompts_by_eight_settings() {
    let plan = SweepPlan::standard(64);
    assert_eq!((plan.prompts.len(), plan.settings.len()), (10, 8));
    let names: std::collections::BTreeSet<_> = plan.settings.iter().map(|s| &s.name).collect();
    assert_eq!(names.len(), 8, "names are unique");
    let toml = toml::to_string(&plan).unwrap();
    assert_eq!(toml::from_str::<SweepPlan>(&toml).unwrap(), plan, "plans round-trip through TOML files");
}

#[test]
fn a_sweep_report_validates_against_its_schema() {
    let text = "the cat sat on the mat. a dog ran to the red door!";
    let tokenizer = CharTokenizer::from_text(text, "test");
    let block = BlockConfig::new(32, 4).with_max_seq_len(32);
    let model = Model::Hrm(HrmConfig::new(tokenizer.vocab_size(), block, 1, 1).init::<B>(3, &Default::default()));
    let mut plan = SweepPlan::standard(12);
    plan.prompts.truncate(2);
    plan.settings = vec![plan.settings[0].clone(), plan.settings[5].clone(), plan.settings[6].clone()];
    let vocabulary = WordVocabulary::from_text(text);
    let mut calls = Vec::new();
    let results =
        run_sweep(&model, &tokenizer, &plan, 32, Some(&vocabulary), &Default::default(), &mut |done, total| {
            calls.push((done, total))
        })
        .unwrap();
    assert_eq!(calls.last(), Some(&(6, 6)));
    let reference = TrigramProfile::from_text(text);
    let report = SweepReport::new(
        "run/checkpoints/step-1".into(),
        "hrm tiny".into(),
        1,
        "cpu".into(),
        results,
        &plan,
        Some(&reference),
    );
    assert!(report.summary.iter().all(|s| s.trigram_similarity.is_some_and(|t| (0.0..=1.0).contains(&t))));
    assert_eq!(report.results.len(), 6);
    assert_eq!(
        report.summary.iter().map(|s| s.setting.as_str()).collect::<Vec<_>>(),
        ["greedy", "fast-no-act", "deep"]
    );
    assert!(report.results.iter().all(|r| r.generation.context == Some(32) && r.new_tokens <= 12));

    let json = serde_json::to_value(&report).unwrap();
    let schema_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schemas/sweep.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The schema is strict: an unknown field or a wrong stop reason is rejected.
    let mut broken = json.clone();
    broken["results"][0]["stop"] = "tired".into();
    assert!(!validator.is_valid(&broken));
    assert_eq!(serde_json::from_value::<SweepReport>(json).unwrap(), report, "reports read back");
}
