//! Writing a checkpoint from every rank's part (rank 0 writes), and the ACT carries a
//! checkpoint keeps for the batch in progress.

use burn::module::Module;
use burn::record::Recorder;
use hrm_core::HrmAutodiffBackend;

use super::{Bytes, Trainer, record_error};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::optimizer::AdamWRecord;
use crate::parallel::weights_checksum;
use crate::state::{PeerPosition, SavedCarry, TrainState};

/// What each rank contributes to a checkpoint that rank 0 writes.
#[derive(Clone)]
struct CheckpointPart {
    place: RankPlace,
    checksum: [f64; 2],
}

/// Where one rank stands in its data: its position and the ACT carries of its batch in
/// progress (what a checkpoint keeps per rank, and where a resumed rank starts).
#[derive(Clone, Default)]
pub(super) struct RankPlace {
    pub(super) position: PeerPosition,
    pub(super) carries: Option<Vec<Option<SavedCarry>>>,
}

impl<B: HrmAutodiffBackend> Trainer<B> {
    /// Writes a checkpoint of the current step (pointing `latest`, and `role` if given, at it)
    /// and prunes old ones. In a data-parallel run every rank calls it: each hands rank 0
    /// its data position and ACT carries, and rank 0 checks the replicas agree and writes.
    pub fn save_checkpoint(&mut self, role: Option<&str>) -> Result<()> {
        let part = CheckpointPart {
            place: RankPlace {
                position: PeerPosition {
                    cursor: self.state.cursor.clone(),
                    segment: self.pending.as_ref().map_or(0, |p| p.segment),
                },
                carries: self
                    .pending
                    .as_ref()
                    .map(|pending| pending.micro.iter().map(|(_, _, c)| c.as_ref().map(SavedCarry::save)).collect()),
            },
            checksum: if self.link.world() > 1 { weights_checksum(&self.model) } else { [0.0; 2] },
        };
        let parts = self.link.all_gather(part)?;
        if !self.link.is_leader() {
            return Ok(());
        }
        self.check_replicas(&parts)?;
        let dir = self.run.checkpoints();
        let count = checkpoint::non_finite_weights(&self.model);
        if count > 0 {
            return Err(TrainError::PoisonedWeights { step: self.state.step, count });
        }
        let peers = parts[1..].iter().map(|p| p.place.position.clone()).collect();
        let state = TrainState { segment: parts[0].place.position.segment, peers, ..self.state.clone() };
        let [model, optim, optim_embed] = self.weights_and_moments()?;
        let mut files = vec![
            ("model.mpk".to_string(), model),
            ("optim.mpk".into(), optim),
            ("optim_embed.mpk".into(), optim_embed),
            ("state.json".into(), serde_json::to_vec_pretty(&state).expect("state serialises")),
        ];
        // A copy of the tokenizer, so the checkpoint alone can rebuild it (`hrm analyze --restore-tokenizer`).
        let tokenizer_file = self.run.root().join(self.tokenizer.file_name());
        let tokenizer = std::fs::read(&tokenizer_file).map_err(|e| TrainError::io(&tokenizer_file, e))?;
        files.push((self.tokenizer.file_name().to_string(), tokenizer));
        for (rank, part) in parts.iter().enumerate() {
            if let Some(carries) = &part.place.carries {
                files.push((carry_file(rank), rmp_serde::to_vec(carries).expect("carry serialises")));
            }
        }
        let path = checkpoint::write(&dir, self.state.step, &files)?;
        checkpoint::set_pointer(&dir, "latest", &path)?;
        if let Some(role) = role {
            checkpoint::set_pointer(&dir, role, &path)?;
        }
        let protect: Vec<_> = ["best", "pause"].iter().filter_map(|r| checkpoint::pointer(&dir, r)).collect();
        checkpoint::prune(&dir, self.config.run.keep_checkpoints.max(1), &protect)?;
        Ok(())
    }

    /// The weights and the optimiser's state as MessagePack bytes, as a checkpoint holds them
    /// (`model.mpk`; `optim.mpk` and `optim_embed.mpk`, burn's AdamW records of every
    /// parameter but the token embedding and of the embedding alone).
    pub(super) fn weights_and_moments(&self) -> Result<[Vec<u8>; 3]> {
        let dir = self.run.checkpoints();
        let model = Bytes::default()
            .record(self.model.clone().into_record(), ())
            .map_err(|e| record_error(&dir, "model", e))?;
        let moments = |record: AdamWRecord<B>| {
            Bytes::default().record(record, ()).map_err(|e| record_error(&dir, "optimiser", e))
        };
        let embedding = self.model.embedding_param_id();
        Ok([
            model,
            moments(self.optim.record(|id| id != embedding))?,
            moments(self.optim.record(|id| id == embedding))?,
        ])
    }

    /// Compares every rank's weight checksum with rank 0's: a relative difference over 1e-4
    /// is an error, a smaller one (floating-point noise) a line in the log.
    fn check_replicas(&mut self, parts: &[CheckpointPart]) -> Result<()> {
        let leader = parts[0].checksum;
        for (rank, part) in parts.iter().enumerate().skip(1) {
            let relative = |i: usize| (part.checksum[i] - leader[i]).abs() / leader[i].abs().max(1e-12);
            let worst = relative(0).max(relative(1));
            if worst.is_nan() || worst > 1e-4 {
                let step = self.state.step;
                return Err(TrainError::ReplicasDiverged { step, rank, rank_sums: part.checksum, leader_sums: leader });
            }
            if worst > 0.0 {
                self.note(&format!(
                    "step {}: rank {rank}'s weights differ from rank 0's by {worst:.1e}",
                    self.state.step
                ))?;
            }
        }
        Ok(())
    }
}

/// The ACT carries of a checkpoint's batch in progress, checked against the config: one per
/// micro-batch, each of the batch's shape.
pub fn decode_carries(bytes: &[u8], config: &TrainConfig) -> std::result::Result<Vec<Option<SavedCarry>>, String> {
    crate::msgpack::check_lengths(bytes)?;
    let carries: Vec<Option<SavedCarry>> = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
    if carries.len() != config.optim.grad_accum {
        return Err(format!("{} carries for {} micro-batches", carries.len(), config.optim.grad_accum));
    }
    let (batch, seq, d_model) = (config.data.batch_size, config.data.seq_len, config.model.block().d_model);
    carries.iter().flatten().try_for_each(|carry| carry.check(batch, seq, d_model))?;
    Ok(carries)
}

/// The checkpoint file holding rank `rank`'s ACT carries.
pub(super) fn carry_file(rank: usize) -> String {
    if rank == 0 { "carry.mpk".into() } else { format!("carry.rank{rank}.mpk") }
}
