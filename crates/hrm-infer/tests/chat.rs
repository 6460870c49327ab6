//! The chat REPL driven through a pipe: it answers, obeys its commands and keeps memory.

use std::io::Cursor;

use hrm_core::{BlockConfig, HrmConfig, Model};
use hrm_data::{CharTokenizer, Tokenizer};
use hrm_infer::{Chat, ChatTemplate, GenerationConfig, ModelInfo, SamplingConfig};

type B = burn::backend::Flex;

fn session(script: &str) -> String {
    let tokenizer = CharTokenizer::from_text("abcdefghij .:UserBot\n", "test");
    let block = BlockConfig::new(32, 4).with_max_seq_len(64);
    let model = Model::Hrm(HrmConfig::new(tokenizer.vocab_size(), block, 2, 2).init::<B>(5, &Default::default()));
    let info = ModelInfo {
        description: "hrm tiny".into(),
        parameters: 1234,
        vocab_size: tokenizer.vocab_size(),
        datasets: vec!["test".into()],
        device: "cpu".into(),
        context: 64,
    };
    let config = GenerationConfig {
        max_new_tokens: Some(12),
        sampling: SamplingConfig { seed: 1, ..Default::default() },
        ..Default::default()
    };
    let mut chat = Chat::new(&model, &tokenizer, &Default::default(), info, ChatTemplate::default(), config);
    let mut out = Vec::new();
    chat.run(&mut Cursor::new(script.as_bytes().to_vec()), &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The `[N tokens | ...]` footers of the replies, as token counts.
fn reply_lengths(transcript: &str) -> Vec<usize> {
    transcript.lines().filter_map(|l| l.strip_prefix('[')?.split(' ').next()?.parse().ok()).collect()
}

#[test]
fn answers_and_obeys_commands_from_a_pipe() {
    let out =
        session("hello\nmode deep\ntemp 0\nmax 5\nbatch\nabc\nstatus\n/debug on\nbad\nmode wild\nquit\nnever read\n");
    assert!(out.contains("Reasoning mode deep: N=3 T=2."), "{out}");
    assert!(out.contains("Temperature 0.") && out.contains("Replies stop after 5 tokens."));
    assert!(out.contains("Replies print whole."));
    assert!(out.contains("Unknown mode `wild`"));
    let lengths = reply_lengths(&out);
    assert_eq!(lengths.len(), 3, "three messages, three replies: {out}");
    assert!(lengths[0] <= 12 && lengths[1] <= 5 && lengths[2] <= 5, "{lengths:?}");
    assert!(out.contains("model: hrm tiny (1234 parameters)") && out.contains("trained on: test"));
    assert!(out.contains("mode: deep | temperature 0 | max 5 tokens"), "{out}");
    assert!(out.contains("last reply: "));
    assert!(out.contains("halt step"), "debug view lists tokens: {out}");
    assert!(!out.contains("never read") && out.matches("Bot: ").count() == 3);
}

#[test]
fn greedy_replies_repeat_after_reset_and_stop_modes_switch() {
    let twice = session("temp 0\nabc\nreset\nabc\n");
    let replies: Vec<&str> = twice.lines().filter(|l| l.contains("Bot: ")).collect();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0], replies[1], "after reset the same message gets the same greedy reply");
    assert!(twice.contains("Conversation forgotten."));
    let stop_modes = session("unlimited\nnatural 3\nstatus\n");
    assert!(stop_modes.contains("No length limit") && stop_modes.contains("after 3 tokens"), "{stop_modes}");
}
