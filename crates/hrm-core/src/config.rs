//! Model configurations: the HRM, the flat baseline, and the transformer block they share.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::loss::LossKind;

/// `with_<field>` builder methods for the listed fields.
macro_rules! setters {
    ($ty:ty { $($method:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub fn $method(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

// burn's `#[derive(Config)]` generates a serde impl that ignores field defaults, so a config
// file would have to spell out every field; these are plain serde structs with defaults.

/// Shape of one transformer block (shared by H, L and the flat baseline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads; `d_model` must divide evenly into them.
    pub n_heads: usize,
    /// SwiGLU expansion; the hidden width is rounded like the reference (see [`BlockConfig::ffn_dim`]).
    #[serde(default = "default_expansion")]
    pub expansion: f64,
    /// Longest sequence the rotary tables cover.
    #[serde(default = "default_max_seq_len")]
    pub max_seq_len: usize,
    /// RoPE base frequency.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_norm_eps")]
    pub norm_eps: f64,
    /// A sigmoid-routed mixture of experts in place of the dense SwiGLU (MoEUT); none: dense.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe: Option<MoeConfig>,
}

/// The mixture-of-experts feed-forward of MoEUT: `n_experts` small SwiGLU experts, each
/// token sent to the `top_k` with the highest sigmoid router score plus a balancing bias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoeConfig {
    /// Experts per block.
    pub n_experts: usize,
    /// Experts each token uses.
    pub top_k: usize,
    /// Hidden width of one expert's SwiGLU.
    pub expert_dim: usize,
    /// Step of the loss-free balancing: after each training forward, each expert's routing
    /// bias moves by this much toward equal load (DeepSeek-V3's update).
    #[serde(default = "default_balance_rate")]
    pub balance_rate: f64,
}

fn default_balance_rate() -> f64 {
    1e-3
}

impl MoeConfig {
    /// Parameters: the router (`d_model × n_experts`) and every expert's gate, up and down.
    pub fn num_params(&self, d_model: usize) -> usize {
        d_model * self.n_experts + 3 * self.n_experts * d_model * self.expert_dim
    }

    fn validate(&self) -> Result<(), ConfigError> {
        nonzero("moe.n_experts", self.n_experts)?;
        nonzero("moe.top_k", self.top_k)?;
        nonzero("moe.expert_dim", self.expert_dim)?;
        if self.top_k > self.n_experts {
            return Err(ConfigError::invalid(
                "moe.top_k",
                self.top_k,
                format!("exceeds n_experts ({})", self.n_experts),
            ));
        }
        if !(self.balance_rate >= 0.0 && self.balance_rate.is_finite()) {
            return Err(ConfigError::invalid("moe.balance_rate", self.balance_rate, "must be a finite number ≥ 0"));
        }
        Ok(())
    }
}

fn default_expansion() -> f64 {
    4.0
}
fn default_max_seq_len() -> usize {
    512
}
fn default_rope_theta() -> f64 {
    10000.0
}
fn default_norm_eps() -> f64 {
    1e-5
}
fn default_cycles() -> usize {
    2
}
fn default_halt_max_steps() -> usize {
    1
}
fn default_exploration() -> f64 {
    0.1
}

setters!(BlockConfig {
    with_expansion => expansion: f64,
    with_max_seq_len => max_seq_len: usize,
    with_rope_theta => rope_theta: f64,
    with_norm_eps => norm_eps: f64,
});

impl BlockConfig {
    /// A block `d_model` wide with `n_heads` heads and default expansion, context and norms.
    pub fn new(d_model: usize, n_heads: usize) -> Self {
        Self {
            d_model,
            n_heads,
            expansion: default_expansion(),
            max_seq_len: default_max_seq_len(),
            rope_theta: default_rope_theta(),
            norm_eps: default_norm_eps(),
            moe: None,
        }
    }

    /// The same block with a mixture-of-experts feed-forward.
    pub fn with_moe(mut self, moe: MoeConfig) -> Self {
        self.moe = Some(moe);
        self
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// SwiGLU hidden width, as the reference computes it:
    /// `ceil_to_multiple(round(expansion * d_model * 2 / 3), 256)`.
    pub fn ffn_dim(&self) -> usize {
        let raw = (self.expansion * self.d_model as f64 * 2.0 / 3.0).round() as usize;
        raw.div_ceil(256) * 256
    }

    /// Parameters in one block: fused qkv and output projections, then the SwiGLU's gate, up
    /// and down, or the mixture of experts.
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let feed_forward = match &self.moe {
            Some(moe) => moe.num_params(d),
            None => 3 * d * self.ffn_dim(),
        };
        4 * d * d + feed_forward
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("d_model", self.d_model)?;
        nonzero("n_heads", self.n_heads)?;
        nonzero("max_seq_len", self.max_seq_len)?;
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(ConfigError::invalid(
                "d_model",
                self.d_model,
                format!("must be divisible by n_heads ({})", self.n_heads),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(ConfigError::invalid(
                "n_heads",
                self.n_heads,
                format!("gives an odd head width {}; RoPE needs an even one", self.head_dim()),
            ));
        }
        if let Some(moe) = &self.moe {
            moe.validate()?;
        }
        positive("expansion", self.expansion)?;
        positive("rope_theta", self.rope_theta)?;
        positive("norm_eps", self.norm_eps)
    }
}

/// How the recurrent core is built and trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recursion {
    /// HRM: separate H and L modules; only the last L call and the last H call carry gradient.
    #[default]
    Hrm,
    /// TRM (Tiny Recursive Model): one network (`l_layers` blocks, `h_layers = 0`) serves both
    /// the latent update `z = net(z, y + x)` and the answer update `y = net(y, z)`; the whole
    /// last recursion (T latent updates and the answer update) carries gradient.
    Trm,
}

/// The Hierarchical Reasoning Model as a causal language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrmConfig {
    /// Vocabulary size (embedding rows and output logits).
    pub vocab_size: usize,
    /// The transformer block used by both H and L.
    pub block: BlockConfig,
    /// Blocks in the slow, high-level module H.
    pub h_layers: usize,
    /// Blocks in the fast, low-level module L.
    pub l_layers: usize,
    /// N: high-level cycles per segment.
    #[serde(default = "default_cycles")]
    pub h_cycles: usize,
    /// T: low-level steps per high-level cycle.
    #[serde(default = "default_cycles")]
    pub l_cycles: usize,
    /// Most ACT segments per sequence (1 turns ACT off).
    #[serde(default = "default_halt_max_steps")]
    pub halt_max_steps: usize,
    /// Probability that a position must run a random minimum number of segments (training).
    #[serde(default = "default_exploration")]
    pub halt_exploration_prob: f64,
    /// Cross-entropy flavour used for the language-model loss.
    #[serde(default)]
    pub loss: LossKind,
    /// HRM (two modules) or TRM (one shared network).
    #[serde(default)]
    pub recursion: Recursion,
}

setters!(HrmConfig {
    with_h_cycles => h_cycles: usize,
    with_l_cycles => l_cycles: usize,
    with_halt_max_steps => halt_max_steps: usize,
    with_halt_exploration_prob => halt_exploration_prob: f64,
    with_loss => loss: LossKind,
    with_recursion => recursion: Recursion,
});

impl HrmConfig {
    /// An HRM over `vocab_size` ids with `h_layers` H blocks and `l_layers` L blocks of shape
    /// `block`; N = T = 2, ACT off, softmax loss.
    pub fn new(vocab_size: usize, block: BlockConfig, h_layers: usize, l_layers: usize) -> Self {
        Self {
            vocab_size,
            block,
            h_layers,
            l_layers,
            h_cycles: default_cycles(),
            l_cycles: default_cycles(),
            halt_max_steps: default_halt_max_steps(),
            halt_exploration_prob: default_exploration(),
            loss: LossKind::default(),
            recursion: Recursion::default(),
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("vocab_size", self.vocab_size)?;
        self.block.validate()?;
        match self.recursion {
            Recursion::Hrm => nonzero("h_layers", self.h_layers)?,
            Recursion::Trm if self.h_layers != 0 => {
                return Err(ConfigError::invalid(
                    "h_layers",
                    self.h_layers,
                    "must be 0 for TRM: one shared network of l_layers blocks does both updates",
                ));
            }
            Recursion::Trm => {}
        }
        nonzero("l_layers", self.l_layers)?;
        nonzero("h_cycles", self.h_cycles)?;
        nonzero("l_cycles", self.l_cycles)?;
        nonzero("halt_max_steps", self.halt_max_steps)?;
        if !(0.0..=1.0).contains(&self.halt_exploration_prob) {
            return Err(ConfigError::invalid(
                "halt_exploration_prob",
                self.halt_exploration_prob,
                "must lie in [0, 1]",
            ));
        }
        Ok(())
    }

    /// Exact trainable parameter count: embedding, H and L blocks (one shared network for
    /// TRM: `h_layers` is 0), output head, Q head.
    pub fn num_params(&self) -> usize {
        let d = self.block.d_model;
        let blocks = (self.h_layers + self.l_layers) * self.block.num_params();
        2 * self.vocab_size * d + blocks + (2 * d + 2)
    }

    /// Whether adaptive computation (more than one segment) is on.
    pub fn act_enabled(&self) -> bool {
        self.halt_max_steps > 1
    }
}

/// A plain causal transformer with the same blocks, embedding and head as the HRM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatConfig {
    /// Vocabulary size (embedding rows and output logits).
    pub vocab_size: usize,
    /// The transformer block.
    pub block: BlockConfig,
    /// Number of stacked blocks.
    pub n_layers: usize,
    /// Cross-entropy flavour used for the language-model loss.
    #[serde(default)]
    pub loss: LossKind,
}

setters!(FlatConfig { with_loss => loss: LossKind });

impl FlatConfig {
    /// A flat transformer of `n_layers` blocks of shape `block` over `vocab_size` ids.
    pub fn new(vocab_size: usize, block: BlockConfig, n_layers: usize) -> Self {
        Self { vocab_size, block, n_layers, loss: LossKind::default() }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        nonzero("vocab_size", self.vocab_size)?;
        self.block.validate()?;
        nonzero("n_layers", self.n_layers)
    }

    /// Exact trainable parameter count: embedding, blocks, output head.
    pub fn num_params(&self) -> usize {
        2 * self.vocab_size * self.block.d_model + self.n_layers * self.block.num_params()
    }
}

/// Either model, as a config file names it (`arch = "hrm"` or `arch = "flat"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum ModelConfig {
    /// The Hierarchical Reasoning Model.
    Hrm(HrmConfig),
    /// The flat transformer baseline.
    Flat(FlatConfig),
}

impl ModelConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::Hrm(c) => c.validate(),
            Self::Flat(c) => c.validate(),
        }
    }

    /// Exact trainable parameter count.
    pub fn num_params(&self) -> usize {
        match self {
            Self::Hrm(c) => c.num_params(),
            Self::Flat(c) => c.num_params(),
        }
    }

    /// The block shape shared by every layer.
    pub fn block(&self) -> &BlockConfig {
        match self {
            Self::Hrm(c) => &c.block,
            Self::Flat(c) => &c.block,
        }
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Hrm(c) => c.vocab_size,
            Self::Flat(c) => c.vocab_size,
        }
    }

    /// Sets the vocabulary size (to a tokenizer's).
    pub fn set_vocab_size(&mut self, vocab_size: usize) {
        match self {
            Self::Hrm(c) => c.vocab_size = vocab_size,
            Self::Flat(c) => c.vocab_size = vocab_size,
        }
    }

    /// The language-model loss.
    pub fn loss(&self) -> LossKind {
        match self {
            Self::Hrm(c) => c.loss,
            Self::Flat(c) => c.loss,
        }
    }

    /// One line naming the architecture and its shape, e.g.
    /// `hrm d_model=256 heads=4 H=4 L=4 layers N=2 T=2 halt_max_steps=4`.
    pub fn summary(&self) -> String {
        let b = self.block();
        let experts =
            b.moe.as_ref().map_or(String::new(), |m| format!(" moe={}x{} top{}", m.n_experts, m.expert_dim, m.top_k));
        match self {
            Self::Hrm(c) if c.recursion == Recursion::Trm => format!(
                "trm d_model={} heads={} shared layers={} N={} T={} halt_max_steps={}{experts}",
                b.d_model, b.n_heads, c.l_layers, c.h_cycles, c.l_cycles, c.halt_max_steps
            ),
            Self::Hrm(c) => format!(
                "hrm d_model={} heads={} H={} L={} layers N={} T={} halt_max_steps={}{experts}",
                b.d_model, b.n_heads, c.h_layers, c.l_layers, c.h_cycles, c.l_cycles, c.halt_max_steps
            ),
            Self::Flat(c) => format!("flat d_model={} heads={} layers={}{experts}", b.d_model, b.n_heads, c.n_layers),
        }
    }

    /// ACT exploration probability (0 for models without ACT).
    pub fn halt_exploration_prob(&self) -> f64 {
        match self {
            Self::Hrm(c) => c.halt_exploration_prob,
            Self::Flat(_) => 0.0,
        }
    }
}

fn nonzero(field: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(field, value, "must be at least 1"));
    }
    Ok(())
}

fn positive(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(ConfigError::invalid(field, value, "must be a positive finite number"));
    }
    Ok(())
}
