//! `hrm chat`: talk to a run's checkpoint, from a terminal or a pipe.

use hrm_infer::{Chat, ChatTemplate, ModelInfo};

use crate::device::DeviceKind;
use crate::generation_args::GenerationArgs;
use crate::with_backend;

/// Arguments of `hrm chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    #[command(flatten)]
    generation: GenerationArgs,
    /// Written before each user message in the model's text.
    #[arg(long, default_value = "User: ")]
    user_prefix: String,
    /// Written before each reply.
    #[arg(long, default_value = "Bot: ")]
    bot_prefix: String,
    /// Ends each turn; a reply stops when it writes it (`\n` is a newline).
    #[arg(long, default_value = "\\n")]
    turn_end: String,
    /// Print whole replies instead of streaming tokens.
    #[arg(long)]
    batch: bool,
    /// Start with the debug view on.
    #[arg(long)]
    debug: bool,
    /// Where to run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: ChatArgs) -> anyhow::Result<()> {
    let unescape = |s: &str| s.replace("\\n", "\n").replace("\\t", "\t");
    let template = ChatTemplate {
        user_prefix: unescape(&args.user_prefix),
        bot_prefix: unescape(&args.bot_prefix),
        turn_end: unescape(&args.turn_end),
    };
    with_backend!(args.device, |B, device| {
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let run = args.run.load::<Inner>(&device)?;
        let context = run.config.data.seq_len;
        let info = ModelInfo {
            description: run.config.model.summary(),
            parameters: run.config.model.num_params(),
            vocab_size: run.config.model.vocab_size(),
            datasets: run.state.datasets.iter().map(|d| d.sources.join("+")).collect(),
            device: args.device.describe(&device),
            context,
        };
        let config = args.generation.config(context);
        let mut chat = Chat::new(&run.model, &run.tokenizer, &device, info, template, config);
        chat.interactive = !args.batch;
        chat.debug = args.debug;
        chat.run(&mut std::io::stdin().lock(), &mut std::io::stdout().lock())?;
        Ok(())
    })
}
