//! Perplexity and bits per byte of a model on any text.

use burn::tensor::{Int, Tensor, TensorData};
use hrm_core::HrmOps;
use hrm_core::{IGNORE_LABEL, LanguageModel, LossKind, Thinking, cross_entropy};
use hrm_data::Tokenizer;
use serde::{Deserialize, Serialize};

/// How well a model predicts a text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextScore {
    /// Mean cross-entropy per predicted token (nats).
    pub loss: f64,
    /// `exp(loss)`.
    pub perplexity: f64,
    /// Total nats / ln 2 / UTF-8 bytes of the predicted tokens: comparable across tokenizers.
    pub bits_per_byte: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// Bytes those tokens decode to.
    pub bytes: usize,
}

/// Scores `text`: it is tokenized whole and cut into windows of `seq_len + 1` tokens that
/// share their edge token; in each, every token after the first is predicted from those
/// before it. Windows run in batches of `batch_size`; `progress(done, total)` follows them.
#[allow(clippy::too_many_arguments)]
pub fn score_text<B: HrmOps, M: LanguageModel<B>>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    text: &str,
    seq_len: usize,
    batch_size: usize,
    thinking: &Thinking,
    loss: LossKind,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize),
) -> hrm_data::Result<TextScore> {
    let ids = tokenizer.encode(text)?;
    let seq_len = seq_len.min(model.max_seq_len()).max(1);
    let windows: Vec<&[u32]> = if ids.len() < 2 {
        Vec::new()
    } else {
        (0..ids.len() - 1).step_by(seq_len).map(|start| &ids[start..(start + seq_len + 1).min(ids.len())]).collect()
    };
    let (mut nats, mut tokens, mut bytes) = (0.0, 0, 0);
    for (i, chunk) in windows.chunks(batch_size.max(1)).enumerate() {
        let width = chunk.iter().map(|w| w.len() - 1).max().unwrap_or(1);
        let (mut inputs, mut labels) = (Vec::new(), Vec::new());
        for window in chunk {
            let n = window.len() - 1;
            inputs.extend(window[..n].iter().map(|&t| t as i64).chain(std::iter::repeat_n(0, width - n)));
            labels.extend(window[1..].iter().map(|&t| t as i64).chain(std::iter::repeat_n(IGNORE_LABEL, width - n)));
            tokens += n;
            bytes += tokenizer.decode(&window[1..]).len();
        }
        let shape = [chunk.len(), width];
        let inputs = Tensor::<B, 2, Int>::from_data(TensorData::new(inputs, shape), device);
        let labels = Tensor::<B, 2, Int>::from_data(TensorData::new(labels, shape), device);
        let ce = cross_entropy(loss, model.logits_with(inputs, thinking), labels).sum();
        nats +=
            ce.into_data().convert::<f64>().to_vec::<f64>().unwrap_or_default().first().copied().unwrap_or(f64::NAN);
        progress(((i + 1) * batch_size.max(1)).min(windows.len()), windows.len());
    }
    let loss = nats / tokens.max(1) as f64;
    Ok(TextScore {
        loss,
        perplexity: loss.exp(),
        bits_per_byte: nats / std::f64::consts::LN_2 / bytes.max(1) as f64,
        tokens,
        bytes,
    })
}
