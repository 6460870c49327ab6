//! `hrm tokenizer train|inspect`: build a tokenizer from text files, or look inside one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hrm_data::{AnyTokenizer, CharTokenizer, HfTokenizer, Tokenizer};

/// `hrm tokenizer` subcommands.
#[derive(clap::Subcommand)]
pub enum TokenizerCommand {
    /// Build a character or byte-level BPE tokenizer from UTF-8 text files.
    Train(TrainArgs),
    /// Show a tokenizer's kind, size and specials, and how it splits a text.
    Inspect(InspectArgs),
}

/// Arguments of `hrm tokenizer train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Text files to learn from (documents are split at blank lines).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// `char` (grows with new text) or `bpe`.
    #[arg(long, default_value = "bpe")]
    kind: String,
    /// Vocabulary size of a BPE tokenizer.
    #[arg(long, default_value_t = 8000)]
    vocab_size: usize,
    /// Folder to write `tokenizer.json` or `char_tokenizer.json` into.
    #[arg(long, short)]
    output: PathBuf,
}

/// Arguments of `hrm tokenizer inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A run folder, a folder holding a tokenizer, or a tokenizer file.
    path: PathBuf,
    /// Text to split.
    #[arg(long, short, default_value = "Once upon a time, a little robot said: \"Hello, world!\"")]
    text: String,
}

pub fn run(command: TokenizerCommand) -> anyhow::Result<()> {
    match command {
        TokenizerCommand::Train(args) => train(args),
        TokenizerCommand::Inspect(args) => inspect(args),
    }
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let mut docs = Vec::new();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
        docs.extend(text.split("\n\n").filter(|d| !d.trim().is_empty()).map(str::to_string));
    }
    let name =
        args.files.iter().filter_map(|f| f.file_stem()).map(|s| s.to_string_lossy()).collect::<Vec<_>>().join("+");
    let tokenizer = match args.kind.as_str() {
        "char" => {
            let mut t = CharTokenizer::new();
            docs.iter().for_each(|d| {
                t.extend(d, &name);
            });
            AnyTokenizer::Char(t)
        }
        "bpe" => AnyTokenizer::Hf(HfTokenizer::train_bpe(docs.into_iter(), args.vocab_size)?),
        other => bail!("unknown tokenizer kind `{other}`: use char or bpe"),
    };
    std::fs::create_dir_all(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
    let path = tokenizer.save_to_dir(&args.output)?;
    println!("wrote {} ({} ids)", path.display(), tokenizer.vocab_size());
    Ok(())
}

/// Loads a tokenizer from a folder (run or not) or a file.
fn load(path: &Path) -> anyhow::Result<AnyTokenizer> {
    match path.is_dir() {
        true => Ok(AnyTokenizer::load_from_dir(path)?),
        false => Ok(AnyTokenizer::load_file(path)?),
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let tokenizer = load(&args.path)?;
    let kind = match &tokenizer {
        AnyTokenizer::Char(t) => {
            let mut added: Vec<(String, usize)> = Vec::new();
            for (name, chars) in &t.tracker.added_by {
                match added.iter_mut().find(|(n, _)| n == name) {
                    Some((_, count)) => *count += chars.chars().count(),
                    None => added.push((name.clone(), chars.chars().count())),
                }
            }
            let added: Vec<String> = added.iter().map(|(name, count)| format!("{name}: +{count}")).collect();
            format!(
                "character ({} characters seen; added by dataset: {})",
                t.tracker.total_chars_seen(),
                added.join(", ")
            )
        }
        AnyTokenizer::Hf(_) => "tokenizers (BPE / WordPiece / Unigram, from tokenizer.json)".into(),
    };
    println!("kind: {kind}");
    println!(
        "vocabulary: {} ids; end of text: id {} {:?}",
        tokenizer.vocab_size(),
        tokenizer.eos_id(),
        tokenizer.decode(&[tokenizer.eos_id()])
    );
    let ids = tokenizer.encode(&args.text)?;
    println!(
        "text: {:?} → {} tokens ({:.2} bytes/token)",
        args.text,
        ids.len(),
        args.text.len() as f64 / ids.len().max(1) as f64
    );
    let pieces: Vec<String> = ids.iter().map(|&id| format!("{id}:{:?}", tokenizer.decode(&[id]))).collect();
    println!("{}", pieces.join(" "));
    let round_trip = tokenizer.decode(&ids) == args.text;
    println!("round trip: {}", if round_trip { "exact" } else { "differs (unknown characters or normalisation)" });
    Ok(())
}
