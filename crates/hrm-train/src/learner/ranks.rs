//! A step's figures reduced over the ranks of a data-parallel run (one rank: itself): the
//! losses as means over the global batch's running positions, the share still running,
//! the tokens read, and this rank's weight in the averaged gradients.

use crate::objective::SegmentReport;

/// What each rank tells the others after a step's backward pass.
#[derive(Clone, Copy)]
pub(super) struct StepShare {
    /// Its segment's losses and counts (summed over its micro-batches).
    pub(super) report: SegmentReport,
    /// Positions still running and positions in all.
    pub(super) running: (f64, f64),
    /// Tokens and bytes of text it read since the last step.
    pub(super) fresh: (u64, u64),
    /// Mean ACT segments of its batch, if that batch could end with this step (all halted,
    /// or the segment cap).
    pub(super) act_steps: Option<f64>,
}

/// A step over all ranks.
pub(super) struct Reduced {
    /// The losses (means over the global batch's running positions) and counts (sums).
    pub(super) report: SegmentReport,
    /// Share of all positions still running.
    pub(super) running: f64,
    /// Every rank's batch ended with this step.
    pub(super) ends: bool,
    /// Mean ACT segments of the batches that ended (over ranks).
    pub(super) act_steps: Option<f64>,
    /// Tokens and bytes of text read by all ranks since the last step.
    pub(super) fresh: (u64, u64),
    /// What this rank scales its summed micro-batch gradients by before the average.
    pub(super) gradient_factor: f64,
}

/// Reduces every rank's share (in rank order) for rank `rank`, each rank's gradients summed
/// over `micro` micro-batches. A rank's losses are means over its running positions;
/// weighting each rank by its share of all running positions makes the average the mean
/// over the global batch. Batches end together on every rank (when every rank's has halted,
/// or at the segment cap), so W ranks step through segments as one device with the W-times
/// batch does.
pub(super) fn reduce(shares: &[StepShare], rank: usize, micro: usize) -> Reduced {
    let ends = shares.iter().all(|s| s.act_steps.is_some());
    let world = shares.len() as f64;
    let all_active: f64 = shares.iter().map(|s| s.report.active).sum();
    let weight = |share: &StepShare| if all_active > 0.0 { share.report.active * world / all_active } else { 1.0 };
    let micro = micro as f64;
    let mut report = SegmentReport::default();
    let (mut running, mut fresh) = ((0.0, 0.0), (0, 0));
    for share in shares {
        report.add(&share.report, weight(share) / (micro * world));
        running = (running.0 + share.running.0, running.1 + share.running.1);
        fresh = (fresh.0 + share.fresh.0, fresh.1 + share.fresh.1);
    }
    Reduced {
        report,
        running: if running.1 > 0.0 { running.0 / running.1 } else { 0.0 },
        ends,
        act_steps: ends.then(|| shares.iter().filter_map(|s| s.act_steps).sum::<f64>() / world),
        fresh,
        gradient_factor: weight(&shares[rank]) / micro,
    }
}
