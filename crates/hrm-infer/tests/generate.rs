//! Generation with tiny untrained models: limits, stop conditions, reproducibility, streaming,
//! cached against uncached decoding, and batches.

use hrm_core::{BlockConfig, FlatConfig, HrmConfig, Model, ReasoningMode};
use hrm_data::{CharTokenizer, Tokenizer};
use hrm_infer::{Generation, GenerationConfig, SamplingConfig, StopReason, generate, generate_batch};

type B = burn::backend::Flex;

fn tokenizer() -> CharTokenizer {
    CharTokenizer::from_text("abcdefghij .", "test")
}

fn hrm(max_seq_len: usize, halt_max_steps: usize) -> Model<B> {
    let block = BlockConfig::new(32, 4).with_max_seq_len(max_seq_len);
    let config = HrmConfig::new(tokenizer().vocab_size(), block, 1, 1).with_halt_max_steps(halt_max_steps);
    Model::Hrm(config.init::<B>(5, &Default::default()))
}

fn flat(max_seq_len: usize) -> Model<B> {
    let config = FlatConfig::new(tokenizer().vocab_size(), BlockConfig::new(32, 4).with_max_seq_len(max_seq_len), 2);
    Model::Flat(config.init::<B>(5, &Default::default()))
}

fn sampled(max_new_tokens: Option<usize>, seed: u64) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens,
        stop_at_eos: false,
        sampling: SamplingConfig { temperature: 1.0, top_k: 0, top_p: 1.0, seed, ..Default::default() },
        ..Default::default()
    }
}

fn run(model: &Model<B>, prompt: &str, config: &GenerationConfig) -> Generation {
    generate(model, &tokenizer(), prompt, config, &Default::default(), &mut |_| {}).unwrap()
}

#[test]
fn respects_limits_streams_and_reproduces() {
    let model = hrm(16, 2);
    let config = sampled(Some(30), 9);
    let mut streamed = String::new();
    let first =
        generate(&model, &tokenizer(), "abc", &config, &Default::default(), &mut |t| streamed.push_str(&t.text))
            .unwrap();
    assert_eq!(first.tokens.len(), 30, "runs to max_new_tokens, past the 16-token context window");
    assert_eq!((first.stop, streamed.as_str()), (StopReason::Length, first.text.as_str()));
    assert_eq!(first, Generation { seconds: first.seconds, ..run(&model, "abc", &config) }, "same seed, same text");
    assert_ne!(first.tokens, run(&model, "abc", &sampled(Some(30), 10)).tokens);
    assert!(run(&model, "abc", &sampled(Some(0), 9)).tokens.is_empty());

    // Stop at the first stop string that appears, and cut it from the text.
    let stop = tokenizer().decode(&first.tokens[5..7]);
    let stopping = GenerationConfig { stop_strings: vec![stop.clone()], ..config };
    let cut = run(&model, "abc", &stopping);
    assert_eq!(cut.stop, StopReason::StopString);
    assert!(first.text.starts_with(&format!("{}{stop}", cut.text)), "{:?} then {stop:?} in {:?}", cut.text, first.text);
    assert!(!format!("{}{stop}", cut.text)[..cut.text.len() + stop.len() - 1].contains(&stop));
}

#[test]
fn natural_stopping_ends_at_a_sentence_or_the_end_of_text() {
    let model = hrm(16, 1);
    let natural = GenerationConfig { sentence_end_after: Some(3), ..sampled(None, 4) };
    let sentence = run(&model, "ab", &natural);
    assert_eq!(sentence.stop, StopReason::SentenceEnd);
    assert!(sentence.text.ends_with('.') && sentence.tokens.len() >= 3, "{:?}", sentence.text);
    assert!(!sentence.text[..sentence.text.len() - 1].contains('.') || sentence.text.find('.').unwrap() < 2);

    let eos = tokenizer().eos_id();
    let ended = run(&model, "ab", &GenerationConfig { stop_at_eos: true, ..sampled(None, 4) });
    assert_eq!(ended.stop, StopReason::EndOfText);
    assert!(!ended.tokens.contains(&eos), "the end-of-text token is not part of the text");
}

#[test]
fn cached_decoding_generates_what_recomputing_does() {
    for (name, model) in [("hrm", hrm(64, 3)), ("flat", flat(64))] {
        for mode in [None, Some(ReasoningMode::Deep)] {
            let greedy = GenerationConfig {
                mode,
                sampling: SamplingConfig { temperature: 0.0, ..Default::default() },
                ..sampled(Some(40), 0)
            };
            let cached = run(&model, "abc deaf", &greedy);
            let uncached = run(&model, "abc deaf", &GenerationConfig { cached: false, ..greedy.clone() });
            assert_eq!(cached.tokens, uncached.tokens, "{name} {mode:?}");
            let every_segment = run(&model, "abc deaf", &GenerationConfig { early_exit: false, ..greedy });
            assert_eq!(cached.tokens, every_segment.tokens, "{name} {mode:?}: without the early exit");
        }
    }
}

#[test]
fn batches_generate_each_prompt_as_alone() {
    // A window the batch never fills: a batch refills it when its longest row fills it, so
    // past that point a row sees a different context than it would alone.
    let model = hrm(64, 2);
    let config = sampled(Some(30), 3);
    let prompts = ["a", "bad cafe", "jig"];
    let mut streamed = vec![String::new(); 3];
    let batch = generate_batch(&model, &tokenizer(), &prompts, &config, &Default::default(), &mut |row, t| {
        streamed[row].push_str(&t.text)
    })
    .unwrap();
    for (row, prompt) in prompts.iter().enumerate() {
        let seeded = GenerationConfig {
            sampling: SamplingConfig { seed: 3 + row as u64, ..config.sampling.clone() },
            ..config.clone()
        };
        assert_eq!(batch[row].tokens, run(&model, prompt, &seeded).tokens, "row {row}: {prompt:?}");
        assert_eq!(streamed[row], batch[row].text);
    }
}
