//! Generation with a tiny untrained HRM: limits, stop strings, reproducibility, streaming.

use hrm_core::{BlockConfig, HrmConfig};
use hrm_data::{CharTokenizer, Tokenizer};
use hrm_infer::{GenerationConfig, SamplingConfig, generate};

type B = burn::backend::Flex;

fn setup() -> (hrm_core::Hrm<B>, CharTokenizer) {
    let tokenizer = CharTokenizer::from_text("abcdefghij .", "test");
    let config = HrmConfig::new(tokenizer.vocab_size(), BlockConfig::new(32, 4).with_max_seq_len(16), 1, 1);
    (config.init::<B>(5, &Default::default()), tokenizer)
}

#[test]
fn respects_limits_streams_and_reproduces() {
    let (model, tokenizer) = setup();
    let config = GenerationConfig {
        max_new_tokens: 30,
        stop_at_eos: false,
        sampling: SamplingConfig { temperature: 1.0, top_k: 0, top_p: 1.0, seed: 9, ..Default::default() },
        ..Default::default()
    };
    let mut streamed = String::new();
    let first =
        generate(&model, &tokenizer, "abc", &config, &Default::default(), &mut |p| streamed.push_str(p)).unwrap();
    assert_eq!(first.tokens.len(), 30, "runs to max_new_tokens, past the 16-token context window");
    assert_eq!(streamed, first.text);
    let again = generate(&model, &tokenizer, "abc", &config, &Default::default(), &mut |_| {}).unwrap();
    assert_eq!(first, again, "same seed, same text");
    let other = GenerationConfig { sampling: SamplingConfig { seed: 10, ..config.sampling.clone() }, ..config.clone() };
    assert_ne!(first, generate(&model, &tokenizer, "abc", &other, &Default::default(), &mut |_| {}).unwrap());

    // Stop at the first stop string that appears.
    let Some(stop) = first.text.chars().nth(5).map(String::from) else { panic!("text too short") };
    let stopping = GenerationConfig { stop_strings: vec![stop.clone()], ..config };
    let cut = generate(&model, &tokenizer, "abc", &stopping, &Default::default(), &mut |_| {}).unwrap();
    assert!(cut.text.ends_with(&stop) && cut.text.len() <= first.text.len());
    assert_eq!(cut.text.matches(&stop).count(), 1);
}
