//! Character and BPE tokenizers: growth, round trips, GPT-2 and T5 files.

mod common;

use common::shared_data;
use hrm_data::tokenizer::{AnyTokenizer, CharTokenizer, HfTokenizer, Tokenizer};

#[test]
fn char_vocabulary_grows_by_exactly_the_new_characters() {
    let mut tokenizer = CharTokenizer::from_text("hello world", "first");
    let before = tokenizer.vocab_size();
    let old_ids = tokenizer.encode("hello world").unwrap();
    assert_eq!(before, 4 + "helo wrd".chars().count());

    let new_ids = tokenizer.extend("hello, wonderful world!", "second");
    // New characters: ',', 'n', 'f', 'u', '!' — appended after every existing id.
    assert_eq!(new_ids, (before as u32..before as u32 + 5).collect::<Vec<_>>());
    assert_eq!(tokenizer.vocab_size(), before + 5);
    assert_eq!(tokenizer.encode("hello world").unwrap(), old_ids, "old ids must never change");
    assert_eq!(tokenizer.extend("hello", "third"), Vec::<u32>::new());

    let text = "hello, wonderful world!";
    assert_eq!(tokenizer.decode(&tokenizer.encode(text).unwrap()), text);
    assert_eq!(tokenizer.decode(&tokenizer.encode("¿").unwrap()), "<unk>");
    let history = &tokenizer.tracker.added_by;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1], ("second".to_string(), "!,fnu".to_string()));
    assert_eq!(tokenizer.tracker.total_chars_seen(), 11 + 23 + 5);

    let dir = tempfile::tempdir().unwrap();
    let path = AnyTokenizer::Char(tokenizer.clone()).save_to_dir(dir.path()).unwrap();
    assert!(path.ends_with("char_tokenizer.json"));
    let AnyTokenizer::Char(loaded) = AnyTokenizer::load_from_dir(dir.path()).unwrap() else { panic!("wrong kind") };
    assert_eq!(loaded.encode(text).unwrap(), tokenizer.encode(text).unwrap());
    assert_eq!(loaded.tracker, tokenizer.tracker);
}

/// Strings that exercise every UTF-8 width, controls, combining marks and emoji.
fn awkward_strings() -> Vec<String> {
    let mut out = vec![
        String::new(),
        " leading and trailing spaces ".into(),
        "tabs\tand\nnewlines\r\n".into(),
        "naïve café — “quotes” ’apostrophes’".into(),
        "日本語のテキストと中文".into(),
        "emoji 👩‍👩‍👧 and flags 🇫🇷".into(),
        "e\u{301} combining, zero\u{200b}width, nul\u{0}byte".into(),
        "<|endoftext|> inside text".into(),
    ];
    // Pseudo-random code points across the whole range (seeded LCG, skipping surrogates).
    let mut state = 12345u64;
    for _ in 0..50 {
        let s: String = (0..20)
            .filter_map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                char::from_u32(((state >> 33) % 0x11_0000) as u32)
            })
            .collect();
        out.push(s);
    }
    out
}

#[test]
fn trained_bpe_round_trips_a_book_and_any_utf8() {
    let Some(book) = shared_data("books/pg11-alices-adventures-in-wonderland.txt") else { return };
    let text = std::fs::read_to_string(book).unwrap();
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    let tokenizer = HfTokenizer::train_bpe(paragraphs.iter(), 1000).unwrap();
    assert_eq!(tokenizer.vocab_size(), 1000);
    let ids = tokenizer.encode(&text).unwrap();
    assert!(ids.len() < text.len() / 2, "BPE should compress: {} ids for {} bytes", ids.len(), text.len());
    assert_eq!(tokenizer.decode(&ids), text);
    for s in awkward_strings() {
        assert_eq!(tokenizer.decode(&tokenizer.encode(&s).unwrap()), s, "round trip of {s:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    AnyTokenizer::Hf(tokenizer.clone()).save_to_dir(dir.path()).unwrap();
    let loaded = AnyTokenizer::load_from_dir(dir.path()).unwrap();
    assert_eq!(loaded.encode(&text).unwrap(), ids);
}

#[test]
fn gpt2_files_give_the_published_ids() {
    let (Some(vocab), Some(merges), Some(json)) = (
        shared_data("tokenizers/gpt2/vocab.json"),
        shared_data("tokenizers/gpt2/merges.txt"),
        shared_data("tokenizers/gpt2/tokenizer.json"),
    ) else {
        return;
    };
    let from_files = HfTokenizer::from_gpt2_files(&vocab, &merges).unwrap();
    let from_json = HfTokenizer::load(&json).unwrap();
    assert_eq!(from_files.vocab_size(), 50_257);
    assert_eq!(from_json.vocab_size(), 50_257);
    // Expected ids read from vocab.json itself: "Hello" and "Ġworld" (Ġ is the byte-level space).
    let table: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&vocab).unwrap()).unwrap();
    let id = |token: &str| table[token].as_u64().unwrap() as u32;
    assert_eq!(from_files.encode("Hello world").unwrap(), vec![id("Hello"), id("Ġworld")]);
    assert_eq!(from_files.eos_id(), id("<|endoftext|>"));
    assert_eq!(from_json.eos_id(), id("<|endoftext|>"));
    for s in ["Hello world", " The cat sat on the mat.", "Once upon a time, there was a little girl named Lily."] {
        assert_eq!(from_files.encode(s).unwrap(), from_json.encode(s).unwrap(), "{s:?}");
        assert_eq!(from_files.decode(&from_files.encode(s).unwrap()), s);
    }
    for s in awkward_strings() {
        assert_eq!(from_files.decode(&from_files.encode(&s).unwrap()), s, "round trip of {s:?}");
    }
    let Some(book) = shared_data("books/pg12-through-the-looking-glass.txt") else { return };
    // SOURCES.md: encoding this book gives 57,338 ids with either form of the GPT-2 tokenizer
    // (counted without the file's UTF-8 byte-order mark, which is 3 more byte-level tokens).
    let text = std::fs::read_to_string(book).unwrap().trim_start_matches('\u{feff}').to_string();
    assert_eq!(from_files.encode(&text).unwrap().len(), 57_338);
    assert_eq!(from_json.encode(&text).unwrap(), from_files.encode(&text).unwrap());
}

#[test]
fn t5_tokenizer_json_loads_with_32100_ids() {
    let Some(json) = shared_data("tokenizers/t5/tokenizer.json") else { return };
    let t5 = HfTokenizer::load(&json).unwrap();
    assert_eq!(t5.vocab_size(), 32_100);
    assert_eq!(t5.eos_id(), t5.inner().token_to_id("</s>").unwrap());
    let ids = t5.encode("Alice was beginning to get very tired").unwrap();
    assert!(!ids.is_empty() && ids.iter().all(|&i| i < 32_100));
    assert_eq!(t5.decode(&ids).trim(), "Alice was beginning to get very tired");
}

#[test]
fn a_folder_without_a_tokenizer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = AnyTokenizer::load_from_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("char_tokenizer.json") && err.contains("tokenizer.json"), "{err}");
}
