//! The chat REPL: streamed replies, conversation memory, reasoning modes and commands.
//!
//! A line that is exactly a command (optionally after `/`) is a command; anything else is a
//! message. Commands: `mode fast|normal|deep|extreme`, `temp X`, `max N`, `status`,
//! `interactive`, `batch`, `unlimited`, `natural [MIN]`, `debug on|off`, `reset`, `help`,
//! `quit` (or `exit`, or end of input).

use std::io::{self, BufRead, Write};

use hrm_core::{LanguageModel, ReasoningMode};
use hrm_data::Tokenizer;

use crate::generate::{GeneratedToken, Generation, GenerationConfig, generate};
use hrm_core::HrmOps;

/// How turns are written into the model's text.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplate {
    /// Written before each user message.
    pub user_prefix: String,
    /// Written before each reply; the model continues from here.
    pub bot_prefix: String,
    /// Ends each turn; a reply stops when it writes this.
    pub turn_end: String,
}

impl Default for ChatTemplate {
    fn default() -> Self {
        Self { user_prefix: "User: ".into(), bot_prefix: "Bot: ".into(), turn_end: "\n".into() }
    }
}

/// What `status` shows about the model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInfo {
    /// Architecture and shape, e.g. `hrm d=256 H=4 L=4 N=2 T=2`.
    pub description: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Datasets trained on, in order.
    pub datasets: Vec<String>,
    /// Where it runs.
    pub device: String,
    /// Tokens of context it sees.
    pub context: usize,
}

/// A chat session over one model.
pub struct Chat<'a, B: HrmOps, M: LanguageModel<B>> {
    model: &'a M,
    tokenizer: &'a dyn Tokenizer,
    device: B::Device,
    info: ModelInfo,
    template: ChatTemplate,
    /// Generation settings; `mode`, temperature, length and stopping change with commands.
    pub config: GenerationConfig,
    /// Stream tokens as they come (interactive) or print whole replies (batch).
    pub interactive: bool,
    /// After each reply, list every token's id, probability, alternatives and halting step.
    pub debug: bool,
    turns: Vec<String>,
    last: Option<Generation>,
    limited_max: usize,
}

impl<'a, B: HrmOps, M: LanguageModel<B>> Chat<'a, B, M> {
    /// A session with `config` (its stop strings gain the template's turn end).
    pub fn new(
        model: &'a M,
        tokenizer: &'a dyn Tokenizer,
        device: &B::Device,
        info: ModelInfo,
        template: ChatTemplate,
        mut config: GenerationConfig,
    ) -> Self {
        if !template.turn_end.is_empty() && !config.stop_strings.contains(&template.turn_end) {
            config.stop_strings.push(template.turn_end.clone());
        }
        let limited_max = config.max_new_tokens.unwrap_or(200);
        Self {
            model,
            tokenizer,
            device: device.clone(),
            info,
            template,
            config,
            interactive: true,
            debug: false,
            turns: Vec::new(),
            last: None,
            limited_max,
        }
    }

    /// Reads lines from `input` until `quit` or its end, answering each message on `out`.
    pub fn run(&mut self, input: &mut dyn BufRead, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "hrm chat: {} ({} parameters). Type `help` for commands.",
            self.info.description, self.info.parameters
        )?;
        let mut line = String::new();
        loop {
            write!(out, "You: ")?;
            out.flush()?;
            line.clear();
            if input.read_line(&mut line)? == 0 {
                writeln!(out)?;
                return Ok(());
            }
            let message = line.trim_end_matches(['\n', '\r']);
            if message.trim().is_empty() {
                continue;
            }
            match self.command(message.trim().trim_start_matches('/'), out)? {
                Some(Flow::Quit) => return Ok(()),
                Some(Flow::Continue) => {}
                None => self.reply(message, out)?,
            }
        }
    }

    /// Carries out `line` if it is a command; `None` if it is a message.
    fn command(&mut self, line: &str, out: &mut dyn Write) -> io::Result<Option<Flow>> {
        let mut words = line.split_whitespace();
        let (name, arg) = (words.next().unwrap_or("").to_ascii_lowercase(), words.next());
        if words.next().is_some() {
            return Ok(None);
        }
        match (name.as_str(), arg) {
            ("quit" | "exit", None) => return Ok(Some(Flow::Quit)),
            ("help", None) => writeln!(out, "{HELP}")?,
            ("status", None) => self.status(out)?,
            ("interactive", None) => {
                self.interactive = true;
                writeln!(out, "Replies stream token by token.")?;
            }
            ("batch", None) => {
                self.interactive = false;
                writeln!(out, "Replies print whole.")?;
            }
            ("unlimited", None) => {
                self.config.max_new_tokens = None;
                self.config.sentence_end_after.get_or_insert(20);
                writeln!(
                    out,
                    "No length limit: replies end at a turn end or a sentence end after {} tokens.",
                    self.config.sentence_end_after.unwrap_or(20)
                )?;
            }
            ("natural", min) => match min.map(str::parse::<usize>).transpose() {
                Ok(min) => {
                    self.config.sentence_end_after = Some(min.unwrap_or(20));
                    self.config.max_new_tokens.get_or_insert(self.limited_max);
                    writeln!(out, "Replies end at the first sentence end after {} tokens.", min.unwrap_or(20))?;
                }
                Err(_) => writeln!(out, "natural takes a whole number of tokens, e.g. `natural 20`")?,
            },
            ("reset", None) => {
                self.turns.clear();
                writeln!(out, "Conversation forgotten.")?;
            }
            ("mode", Some(mode)) => match mode.parse::<ReasoningMode>() {
                Ok(mode) => {
                    self.config.mode = Some(mode);
                    let c = mode.cycles();
                    writeln!(out, "Reasoning mode {mode}: N={} T={}.", c.h, c.l)?;
                }
                Err(_) => writeln!(out, "Unknown mode `{mode}`: use fast, normal, deep or extreme.")?,
            },
            ("temp", Some(value)) => match value.parse::<f64>() {
                Ok(t) if (0.0..=5.0).contains(&t) => {
                    self.config.sampling.temperature = t;
                    writeln!(out, "Temperature {t}.")?;
                }
                _ => writeln!(out, "temp takes a number from 0 (greedy) to 5, e.g. `temp 0.8`")?,
            },
            ("max", Some(value)) => match value.parse::<usize>() {
                Ok(n) if n > 0 => {
                    self.config.max_new_tokens = Some(n);
                    self.limited_max = n;
                    writeln!(out, "Replies stop after {n} tokens.")?;
                }
                _ => writeln!(out, "max takes a positive number of tokens, e.g. `max 200`")?,
            },
            ("debug", Some(state @ ("on" | "off"))) => {
                self.debug = state == "on";
                writeln!(out, "Debug view {state}.")?;
            }
            _ => return Ok(None),
        }
        Ok(Some(Flow::Continue))
    }

    /// Answers `message`, keeping it and the reply in the conversation.
    fn reply(&mut self, message: &str, out: &mut dyn Write) -> io::Result<()> {
        let t = &self.template;
        let user_turn = format!("{}{message}{}", t.user_prefix, t.turn_end);
        let prompt = self.prompt_with(&user_turn);
        write!(out, "Bot: ")?;
        out.flush()?;
        let interactive = self.interactive;
        let mut tokens: Vec<GeneratedToken> = Vec::new();
        let mut write_error = None;
        let result = generate(self.model, self.tokenizer, &prompt, &self.config, &self.device, &mut |token| {
            if interactive && write_error.is_none() {
                write_error = write!(out, "{}", token.text).and_then(|_| out.flush()).err();
            }
            tokens.push(token.clone());
        });
        if let Some(e) = write_error {
            return Err(e);
        }
        let generation = match result {
            Ok(generation) => generation,
            Err(e) => {
                writeln!(out, "\n(cannot reply: {e})")?;
                return Ok(());
            }
        };
        let text = generation.text.trim_end_matches(self.template.turn_end.as_str());
        if !interactive {
            write!(out, "{text}")?;
        }
        writeln!(out)?;
        let mode = self.config.mode.map_or("trained".to_string(), |m| m.to_string());
        writeln!(
            out,
            "[{} tokens | {:.2} s | {:.1} tokens/s | {mode} | temp {} | {:?}]",
            generation.tokens.len(),
            generation.seconds,
            generation.tokens_per_second(),
            self.config.sampling.temperature,
            generation.stop
        )?;
        if self.debug {
            self.debug_view(&tokens, out)?;
        }
        self.turns.push(user_turn);
        self.turns.push(format!("{}{text}{}", self.template.bot_prefix, self.template.turn_end));
        self.last = Some(generation);
        Ok(())
    }

    /// The conversation so far plus `user_turn` and the reply prefix, dropping the oldest
    /// turns until it fits the context with room for the reply.
    fn prompt_with(&mut self, user_turn: &str) -> String {
        let reserve = self.config.max_new_tokens.unwrap_or(self.info.context / 2).min(self.info.context / 2);
        let budget = self.info.context.saturating_sub(reserve).max(1);
        let length = |text: &str| self.tokenizer.encode(text).map_or(usize::MAX, |ids| ids.len());
        loop {
            let prompt = format!("{}{user_turn}{}", self.turns.concat(), self.template.bot_prefix);
            if self.turns.is_empty() || length(&prompt) <= budget {
                return prompt;
            }
            self.turns.remove(0);
        }
    }

    fn status(&self, out: &mut dyn Write) -> io::Result<()> {
        let i = &self.info;
        writeln!(
            out,
            "model: {} ({} parameters), vocabulary {}, context {} tokens",
            i.description, i.parameters, i.vocab_size, i.context
        )?;
        writeln!(out, "trained on: {}", if i.datasets.is_empty() { "-".to_string() } else { i.datasets.join(", ") })?;
        let mode = self.config.mode.map_or("trained N×T".to_string(), |m| m.to_string());
        let length = self.config.max_new_tokens.map_or("unlimited".to_string(), |n| format!("{n} tokens"));
        let natural = self.config.sentence_end_after.map_or("off".to_string(), |n| format!("after {n} tokens"));
        writeln!(
            out,
            "device: {} | mode: {mode} | temperature {} | max {length} | natural stop {natural}",
            i.device, self.config.sampling.temperature
        )?;
        writeln!(
            out,
            "output: {} | debug {} | memory: {} turns",
            if self.interactive { "interactive" } else { "batch" },
            if self.debug { "on" } else { "off" },
            self.turns.len()
        )?;
        match &self.last {
            Some(g) => writeln!(out, "last reply: {} tokens, {:.1} tokens/s", g.tokens.len(), g.tokens_per_second()),
            None => writeln!(out, "last reply: none yet"),
        }
    }

    fn debug_view(&self, tokens: &[GeneratedToken], out: &mut dyn Write) -> io::Result<()> {
        for (i, t) in tokens.iter().enumerate() {
            let alternatives: Vec<String> =
                t.alternatives.iter().map(|(id, p)| format!("{:?} {p:.3}", self.tokenizer.decode(&[*id]))).collect();
            let steps = t.steps.map_or("-".to_string(), |s| s.to_string());
            writeln!(
                out,
                "  {i:>3}  id {:>6}  {:<12?} p {:.3}  halt step {steps}  top: {}",
                t.id,
                t.text,
                t.probability,
                alternatives.join(", ")
            )?;
        }
        Ok(())
    }
}

enum Flow {
    Continue,
    Quit,
}

const HELP: &str = "Commands (a line that is exactly one of these; a leading / is allowed):
  mode fast|normal|deep|extreme   reasoning depth N×T: 1×1, 2×2, 3×2, 6×4
  temp X        sampling temperature (0 = greedy)
  max N         reply length limit in tokens
  unlimited     no length limit; stop at a turn or sentence end
  natural [N]   stop at the first sentence end after N tokens (default 20)
  interactive   stream tokens as they come      batch   print whole replies
  debug on|off  list each token's id, probability, alternatives and halting step
  status        model, settings and speed of the last reply
  reset         forget the conversation
  quit          leave (also: exit, end of input)";
