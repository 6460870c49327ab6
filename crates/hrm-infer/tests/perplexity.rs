//! Scoring a text: every token after the first predicted once, padding never counted.

use hrm_core::{BlockConfig, FlatConfig, LossKind, Model, Thinking};
use hrm_data::{CharTokenizer, Tokenizer};
use hrm_infer::score_text;

type B = burn::backend::Flex;

#[test]
fn every_token_is_scored_once_whatever_the_batching() {
    let text = "the quick brown fox jumps over the lazy dog. ".repeat(5);
    let tokenizer = CharTokenizer::from_text(&text, "test");
    let block = BlockConfig::new(32, 4).with_max_seq_len(16);
    let model = Model::Flat(FlatConfig::new(tokenizer.vocab_size(), block, 2).init::<B>(1, &Default::default()));
    let score = |batch| {
        let mut calls = 0;
        let s = score_text(
            &model,
            &tokenizer,
            &text,
            16,
            batch,
            &Thinking::default(),
            LossKind::Softmax,
            &Default::default(),
            &mut |_, _| calls += 1,
        )
        .unwrap();
        (s, calls)
    };
    let ((one, calls_one), (three, calls_three)) = (score(1), score(3));
    assert_eq!(one.tokens, text.chars().count() - 1);
    assert_eq!(one.bytes, text.len() - 1, "ASCII: one byte a predicted character");
    assert_eq!((calls_one, calls_three), (14, 5), "225 tokens, 224 predictions: 14 windows of 16");
    assert!((one.loss - three.loss).abs() < 1e-5, "{one:?} vs {three:?}");
    let bpb = one.loss * one.tokens as f64 / std::f64::consts::LN_2 / one.bytes as f64;
    assert!((one.bits_per_byte - bpb).abs() < 1e-9 && (one.perplexity - one.loss.exp()).abs() < 1e-9);
    // An untrained model is close to uniform over the vocabulary.
    assert!((one.loss - (tokenizer.vocab_size() as f64).ln()).abs() < 1.0, "{one:?}");
}
