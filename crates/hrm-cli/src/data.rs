//! `hrm data inspect`: what a data config streams — each source's shards and where they come
//! from, counts, samples, filter statistics.

use std::path::PathBuf;

use anyhow::Context;
use hrm_data::{HubOptions, Split};
use hrm_train::TrainConfig;

/// `hrm data` subcommands.
#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// Stream documents of a config's data: counts per source, bytes, filter statistics, samples.
    Inspect(InspectArgs),
}

/// Arguments of `hrm data inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A run config (TOML) whose `[data]` to read.
    #[arg(long, short)]
    config: PathBuf,
    /// `train` or `validation`.
    #[arg(long, default_value = "train")]
    split: String,
    /// Most documents to read (the stream stops earlier at the end of one pass).
    #[arg(long, default_value_t = 1000)]
    docs: usize,
    /// Sample documents to print.
    #[arg(long, default_value_t = 3)]
    samples: usize,
}

pub fn run(command: DataCommand) -> anyhow::Result<()> {
    let DataCommand::Inspect(args) = command;
    let config = TrainConfig::load(&args.config)?;
    let split = match args.split.as_str() {
        "train" => Split::Train,
        "validation" => Split::Validation,
        other => anyhow::bail!("unknown split `{other}`: use train or validation"),
    };
    let base = crate::folder::folder_of(&args.config);
    let mut stream = config
        .data
        .documents(split, &base, &HubOptions::from_env())
        .with_context(|| format!("opening the data of {}", args.config.display()))?;
    for source in stream.sources() {
        println!("{}: {}", source.spec().name, describe_files(source.files()));
    }
    let bar = crate::progress::bar(args.docs as u64, "documents");
    let (mut count, mut bytes, mut samples) = (0usize, 0usize, Vec::new());
    while count < args.docs {
        let Some(doc) = stream.next_document()? else { break };
        count += 1;
        bytes += doc.text.len();
        if samples.len() < args.samples {
            samples.push(doc);
        }
        bar.inc(1);
        if stream.sources().iter().any(|s| s.position().epoch > 0) {
            break;
        }
    }
    bar.finish_and_clear();
    println!(
        "{} documents, {:.2} MB, {:.0} bytes/document ({:?} split)",
        count,
        bytes as f64 / 1e6,
        bytes as f64 / count.max(1) as f64,
        split
    );
    for (source, n) in stream.sources().iter().zip(stream.documents_per_source()) {
        println!("  {:<24} {n:>8} documents", source.spec().name);
    }
    let s = stream.filter_stats();
    println!(
        "filters: {} seen, {} kept; dropped: language {}, length {}, symbols {}, letters {}, repeated lines {}, boilerplate {}, duplicates {}",
        s.seen, s.kept, s.language, s.length, s.symbols, s.alpha, s.repeated_lines, s.boilerplate, s.duplicate
    );
    for (i, doc) in samples.iter().enumerate() {
        let preview: String = doc.text.chars().take(300).collect();
        let more = if doc.text.chars().count() > 300 { " …" } else { "" };
        let source = stream.sources().get(doc.source).map_or("?", |s| s.spec().name.as_str());
        println!("--- sample {} (source {source}) ---\n{preview}{more}", i + 1);
    }
    Ok(())
}

/// How many files a source reads, where they come from (local, a Hub repository's own files,
/// its parquet conversion, or the web) and the first of them.
fn describe_files(files: &[hrm_data::source::FileRef]) -> String {
    use hrm_data::source::FileRef;
    let origin = match files.first() {
        Some(FileRef::Hub(shard)) if shard.dataset.revision == hrm_data::PARQUET_REVISION => {
            format!("the parquet conversion of {} (`{}`)", shard.dataset.repo, hrm_data::PARQUET_REVISION)
        }
        Some(FileRef::Hub(shard)) => format!("{}'s own files at `{}`", shard.dataset.repo, shard.dataset.revision),
        Some(FileRef::Url(_)) => "the web".into(),
        _ => "local files".into(),
    };
    let names: Vec<String> = files
        .iter()
        .take(3)
        .map(|file| match file {
            FileRef::Local(path) => path.display().to_string(),
            FileRef::Hub(shard) => shard.filename.clone(),
            FileRef::Url(file) => file.url.clone(),
        })
        .collect();
    let more = if files.len() > 3 { ", …" } else { "" };
    format!("{} file(s) from {origin}: {}{more}", files.len(), names.join(", "))
}

#[cfg(test)]
mod tests {
    use hrm_data::source::FileRef;
    use hrm_data::{HubDataset, HubShard};

    #[test]
    fn a_sources_files_say_where_they_come_from() {
        let dataset = HubDataset {
            repo: "allenai/c4".into(),
            config: "en".into(),
            split: "train".into(),
            data_files: None,
            revision: "main".into(),
        };
        let shard = |name: &str, dataset: &HubDataset| {
            FileRef::Hub(HubShard { dataset: dataset.clone(), filename: name.into() })
        };
        let own: Vec<_> = (0..4).map(|i| shard(&format!("en/c4-train.0000{i}-of-01024.json.gz"), &dataset)).collect();
        assert_eq!(
            super::describe_files(&own),
            "4 file(s) from allenai/c4's own files at `main`: en/c4-train.00000-of-01024.json.gz, \
             en/c4-train.00001-of-01024.json.gz, en/c4-train.00002-of-01024.json.gz, …"
        );
        let converted = HubDataset { revision: hrm_data::PARQUET_REVISION.into(), ..dataset };
        let line = super::describe_files(&[shard("en/partial-train/0000.parquet", &converted)]);
        assert!(line.starts_with("1 file(s) from the parquet conversion of allenai/c4"), "{line}");
        assert!(super::describe_files(&[FileRef::Local("a.txt".into())]).contains("local files: a.txt"));
        let web = FileRef::Url(hrm_data::UrlFile::new("https://example.org/books/pg11.txt").unwrap());
        assert_eq!(super::describe_files(&[web]), "1 file(s) from the web: https://example.org/books/pg11.txt");
    }
}
