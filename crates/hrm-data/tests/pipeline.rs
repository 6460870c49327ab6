//! The pipeline end to end: mixing, splitting, filtering, packing, shuffling, resuming.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use common::*;
use hrm_data::{
    Batch, CharTokenizer, DataConfig, FilterConfig, Filters, HubOptions, Shard, SourceSpec, Split, Tokenizer,
};

fn write_corpus(dir: &Path, name: &str, prefix: &str, n: usize) {
    let docs: Vec<String> =
        (0..n).map(|i| format!("{prefix} story {i}. It was a sunny day and the cat sat down.")).collect();
    std::fs::write(dir.join(name), docs.join("\n<|endoftext|>\n")).unwrap();
}

fn tokenizer_for(dir: &Path) -> Arc<dyn Tokenizer> {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
    }
    Arc::new(CharTokenizer::from_text(&text, "test"))
}

#[test]
fn mix_proportions_follow_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 300);
    write_corpus(dir.path(), "b.txt", "beta", 200);
    write_corpus(dir.path(), "c.txt", "gamma", 100);
    let sources = vec![
        SourceSpec { weight: 5.0, ..SourceSpec::local("a", "a.txt") },
        SourceSpec { weight: 3.0, ..SourceSpec::local("b", "b.txt") },
        SourceSpec { weight: 2.0, ..SourceSpec::local("c", "c.txt") },
    ];
    let config = DataConfig { validation_fraction: 0.0, seed: 11, ..DataConfig::new(sources, 16, 4) };
    let mut stream = config.documents(Split::Train, dir.path(), &HubOptions::from_env()).unwrap();
    for _ in 0..10_000 {
        stream.next_document().unwrap().unwrap();
    }
    let counts = stream.documents_per_source();
    println!("documents per source over 10k draws: {counts:?}");
    for (count, weight) in counts.iter().zip([0.5, 0.3, 0.2]) {
        let share = *count as f64 / 10_000.0;
        assert!((share - weight).abs() < 0.02, "share {share} vs weight {weight}");
    }
    // Sources smaller than their share of 10k documents were read several times over.
    assert!(stream.sources()[2].position().epoch >= 19);
}

#[test]
fn train_and_validation_are_disjoint_and_cover_everything() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 1000);
    let config =
        DataConfig { validation_fraction: 0.1, ..DataConfig::new(vec![SourceSpec::local("a", "a.txt")], 16, 4) };
    let read = |split| {
        let mut stream = config.documents(split, dir.path(), &HubOptions::from_env()).unwrap();
        let mut docs = HashSet::new();
        // Training repeats; one pass is the first time a document comes back.
        while let Some(doc) = stream.next_document().unwrap() {
            if !docs.insert(doc.text) {
                break;
            }
        }
        docs
    };
    let (train, validation) = (read(Split::Train), read(Split::Validation));
    assert!(train.is_disjoint(&validation));
    assert_eq!(train.len() + validation.len(), 1000);
    assert!((60..=140).contains(&validation.len()), "validation has {} of 1000", validation.len());
}

#[test]
fn resuming_from_a_cursor_yields_exactly_the_uninterrupted_batches() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 120);
    write_corpus(dir.path(), "b.txt", "beta", 80);
    let sources = vec![SourceSpec::local("a", "a.txt"), SourceSpec { weight: 2.0, ..SourceSpec::local("b", "b.txt") }];
    let config = DataConfig {
        shuffle_block: 8,
        seed: 3,
        filters: FilterConfig { dedup: true, ..FilterConfig::default() },
        ..DataConfig::new(sources, 24, 3)
    };
    let tokenizer = tokenizer_for(dir.path());
    let hub = HubOptions::from_env();
    let batches = |config: &DataConfig| config.batches(Split::Train, tokenizer.clone(), dir.path(), &hub).unwrap();

    let mut uninterrupted = batches(&config);
    let reference: Vec<Batch> = (0..40).map(|_| uninterrupted.next_batch().unwrap().unwrap()).collect();
    // Every window is seq_len + 1 tokens, cut across document boundaries with end-of-text.
    assert!(reference.iter().all(|b| b.tokens.len() == 3 * 25 && b.batch_size == 3));
    assert!(reference.iter().any(|b| b.tokens.contains(&tokenizer.eos_id())));

    for stop in [1, 5, 13, 27] {
        // The cursor goes through JSON, as it does in a checkpoint.
        let json = serde_json::to_string(&reference[stop - 1].cursor).unwrap();
        let mut resumed = batches(&config);
        resumed.seek(&serde_json::from_str(&json).unwrap()).unwrap();
        for expected in &reference[stop..] {
            let got = resumed.next_batch().unwrap().unwrap();
            assert_eq!(got.tokens, expected.tokens, "resume after batch {stop}");
            assert_eq!(got.cursor, expected.cursor);
        }
    }
    // The prefetch thread yields the same batches.
    let prefetched: Vec<Batch> = batches(&config).prefetch(2).take(40).map(Result::unwrap).collect();
    assert_eq!(prefetched, reference);
}

#[test]
fn shards_split_the_stream_round_robin_and_resume_from_their_own_cursors() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 150);
    let config =
        DataConfig { shuffle_block: 8, seed: 5, ..DataConfig::new(vec![SourceSpec::local("a", "a.txt")], 20, 2) };
    let tokenizer = tokenizer_for(dir.path());
    let hub = HubOptions::from_env();
    let batches =
        |shard| config.batches(Split::Train, tokenizer.clone(), dir.path(), &hub).unwrap().shard(shard).unwrap();
    let whole: Vec<Batch> = {
        let mut all = batches(Shard::WHOLE);
        (0..36).map(|_| all.next_batch().unwrap().unwrap()).collect()
    };
    let world = 3;
    for rank in 0..world {
        let shard = Shard { rank, world };
        let mut own = batches(shard);
        let mine: Vec<Batch> = (0..12).map(|_| own.next_batch().unwrap().unwrap()).collect();
        for (k, batch) in mine.iter().enumerate() {
            // Rank r's k-th batch is global batch kW + r; its cursor is the end of its group.
            assert_eq!(batch.tokens, whole[k * world + rank].tokens, "rank {rank}, batch {k}");
            assert_eq!(batch.cursor, whole[k * world + world - 1].cursor);
        }
        let mut resumed = batches(shard);
        resumed.seek(&mine[4].cursor).unwrap();
        for expected in &mine[5..] {
            assert_eq!(resumed.next_batch().unwrap().unwrap().tokens, expected.tokens, "rank {rank} resumed");
        }
    }
    let no_such_rank =
        config.batches(Split::Train, tokenizer.clone(), dir.path(), &hub).unwrap().shard(Shard { rank: 2, world: 2 });
    assert!(no_such_rank.is_err());
}

#[test]
fn every_shard_runs_out_at_the_same_group() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 200);
    let config =
        DataConfig { validation_fraction: 0.3, ..DataConfig::new(vec![SourceSpec::local("a", "a.txt")], 30, 7) };
    let tokenizer = tokenizer_for(dir.path());
    let hub = HubOptions::from_env();
    let counts: Vec<usize> = (0..3)
        .map(|rank| {
            let mut shard = config
                .batches(Split::Validation, tokenizer.clone(), dir.path(), &hub)
                .unwrap()
                .shard(Shard { rank, world: 3 })
                .unwrap();
            std::iter::from_fn(|| shard.next_batch().unwrap()).count()
        })
        .collect();
    let whole = {
        let mut all = config.batches(Split::Validation, tokenizer.clone(), dir.path(), &hub).unwrap();
        std::iter::from_fn(|| all.next_batch().unwrap()).count()
    };
    assert!(whole >= 4, "{whole} batches");
    assert_eq!(counts, vec![whole / 3; 3], "{whole} batches in all");
}

#[test]
fn validation_batches_keep_order_and_the_last_short_batch() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), "a.txt", "alpha", 200);
    let config =
        DataConfig { validation_fraction: 0.2, ..DataConfig::new(vec![SourceSpec::local("a", "a.txt")], 30, 7) };
    let tokenizer = tokenizer_for(dir.path());
    let mut batches = config.batches(Split::Validation, tokenizer, dir.path(), &HubOptions::from_env()).unwrap();
    let mut rows = Vec::new();
    while let Some(batch) = batches.next_batch().unwrap() {
        rows.push(batch.batch_size);
    }
    assert!(rows.len() > 2 && rows[..rows.len() - 1].iter().all(|&r| r == 7));
    assert!(*rows.last().unwrap() <= 7);
}

#[test]
fn batches_become_shifted_input_and_target_tensors() {
    type B = burn::backend::Flex;
    let batch = Batch {
        tokens: vec![1, 2, 3, 4, 5, 6, 7, 8],
        batch_size: 2,
        seq_len: 3,
        bytes: 6.0,
        cursor: Default::default(),
    };
    let (inputs, targets) = batch.to_tensors::<B>(&Default::default());
    assert_eq!(inputs.to_data().to_vec::<i32>().unwrap(), [1, 2, 3, 5, 6, 7]);
    assert_eq!(targets.to_data().to_vec::<i32>().unwrap(), [2, 3, 4, 6, 7, 8]);
}

#[test]
fn filters_count_what_they_drop() {
    let mut filters = Filters::new(&FilterConfig {
        language: Some("eng".into()),
        min_chars: Some(20),
        max_symbol_ratio: Some(0.3),
        max_repeated_line_ratio: Some(0.5),
        drop_boilerplate: true,
        dedup: true,
        ..FilterConfig::default()
    })
    .unwrap();
    let english = "The children walked to the park and played on the swings until dinner time.";
    let docs = [
        english,
        english,                                                                 // duplicate
        "too short",                                                             // length
        "Le chat est assis sur le tapis et regarde les oiseaux dans le jardin.", // language
        "#### $$$$ %%%% @@@@ &&&& **** ^^^^ ~~~~ |||| {{{{ }}}} <<<< >>>> ====", // symbols
        "Buy now!\nBuy now!\nBuy now!\nBuy now!\nThe end of this very page.",    // repeated lines
        "This website uses cookies to improve your experience on every page.",   // boilerplate
    ];
    let kept: Vec<bool> = docs.iter().map(|d| filters.keep(d)).collect();
    assert_eq!(kept, [true, false, false, false, false, false, false]);
    let s = &filters.stats;
    assert_eq!(
        (s.seen, s.kept, s.duplicate, s.length, s.language, s.symbols, s.repeated_lines, s.boilerplate),
        (7, 1, 1, 1, 1, 1, 1, 1)
    );
    assert!(Filters::new(&FilterConfig { language: Some("klingon".into()), ..FilterConfig::default() }).is_err());
}

#[test]
fn c4_sample_through_language_and_quality_filters() {
    let Some(c4) = shared_data("c4-sample/c4_sample.jsonl") else { return };
    let filters = FilterConfig {
        language: Some("eng".into()),
        min_chars: Some(200),
        min_alpha_ratio: Some(0.6),
        drop_boilerplate: true,
        ..FilterConfig::default()
    };
    let config = DataConfig {
        validation_fraction: 0.0,
        filters,
        ..DataConfig::new(vec![SourceSpec::local("c4", c4.to_str().unwrap())], 64, 4)
    };
    // Training repeats its sources: stop once the first pass over the 1,000 documents is done.
    let mut stream = config.documents(Split::Train, Path::new("."), &HubOptions::from_env()).unwrap();
    while stream.sources()[0].position().epoch == 0 {
        stream.next_document().unwrap().unwrap();
    }
    let stats = stream.filter_stats().clone();
    println!("c4 sample filter stats (first pass and a little more): {stats:?}");
    assert!(stats.seen >= 1000);
    assert!(stats.language > 0 && stats.length > 0, "the sample has short and non-English pages");
    let kept_share = stats.kept as f64 / stats.seen as f64;
    assert!(kept_share > 0.5 && kept_share < 1.0, "kept {kept_share}");
}
