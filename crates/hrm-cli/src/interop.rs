//! `hrm export` and `hrm import`: safetensors + config.json + tokenizer, HF-style.

use std::path::PathBuf;

use hrm_train::{RunDir, export_run, import_export};

/// Arguments of `hrm export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    /// The folder to write model.safetensors, config.json, the tokenizer and hrm_train.toml into.
    #[arg(long, short)]
    output: PathBuf,
    /// Also write sample.safetensors: this text's token ids and our logits for it (for parity checks).
    #[arg(long)]
    sample: Option<String>,
}

/// Arguments of `hrm import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// A folder written by `hrm export`.
    export: PathBuf,
    /// The new run folder to create.
    #[arg(long, short)]
    output: PathBuf,
}

type Cpu = burn::backend::Flex;

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    for file in export_run::<Cpu>(
        &args.run.dir(),
        &args.run.checkpoint,
        &args.output,
        args.sample.as_deref(),
        &Default::default(),
    )? {
        println!("wrote {}", file.display());
    }
    Ok(())
}

pub fn import(args: ImportArgs) -> anyhow::Result<()> {
    let checkpoint = import_export::<Cpu>(&args.export, &RunDir::new(&args.output), &Default::default())?;
    println!("imported into {} (checkpoint {})", args.output.display(), checkpoint.display());
    Ok(())
}
