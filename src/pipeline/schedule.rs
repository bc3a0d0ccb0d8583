//! The commit units of a run, in order: the clustering batches, up to `refine_epochs` Lloyd
//! epochs over all items, the final pass, then (when the run makes page-level groups) the
//! grouping units, each a range of topic ids. Epochs and the final pass walk the same chunks.
//!
//! Unit numbers are fixed at create, so a unit's meaning never depends on what happened at run
//! time; refinement epochs left out once the centroids stop moving are marked `skipped` by the
//! commit that ends refinement.

use std::ops::Range;

use crate::core::plan::BatchPlan;
use crate::store::{Phase, UnitPlan};

/// What a commit unit computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Cluster { batch: usize },
    Refine { epoch: u32, chunk: usize },
    Final { chunk: usize },
    Group { chunk: usize },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    batches: Vec<Range<usize>>,
    chunks: Vec<Range<usize>>,
    refine_epochs: u32,
    /// Topic ids of each grouping unit.
    topic_ranges: Vec<Range<usize>>,
    n_items: usize,
    n_topics: usize,
}

impl Schedule {
    /// `chunk_items`: the minimum items per refinement or final-pass chunk; `None` makes every
    /// clustering batch its own chunk (runs created before refinement existed).
    /// `group_units`: how many grouping units split the `n_topics` topic ids (0: none).
    pub fn new(
        plan: &BatchPlan,
        chunk_items: Option<usize>,
        refine_epochs: u32,
        n_topics: usize,
        group_units: usize,
    ) -> Schedule {
        let units = group_units.min(n_topics);
        Schedule {
            batches: plan.batches.clone(),
            chunks: chunk_items.map_or_else(|| plan.batches.clone(), |n| plan.pass_chunks(n)),
            refine_epochs,
            // Near-equal ranges: unit u holds topics [u·k/U, (u+1)·k/U).
            topic_ranges: (0..units)
                .map(|u| u * n_topics / units..(u + 1) * n_topics / units)
                .collect(),
            n_items: plan.order.len(),
            n_topics,
        }
    }

    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }

    pub fn total_units(&self) -> usize {
        self.first_group_unit() + self.topic_ranges.len()
    }

    fn first_group_unit(&self) -> usize {
        self.batches.len() + (self.refine_epochs as usize + 1) * self.chunks.len()
    }

    pub fn step(&self, unit: usize) -> Step {
        let (n_batches, n_chunks) = (self.batches.len(), self.chunks.len());
        let refine_units = self.refine_epochs as usize * n_chunks;
        if unit < n_batches {
            Step::Cluster { batch: unit }
        } else if unit < n_batches + refine_units {
            let offset = unit - n_batches;
            Step::Refine {
                epoch: (offset / n_chunks) as u32,
                chunk: offset % n_chunks,
            }
        } else if unit < self.first_group_unit() {
            Step::Final {
                chunk: unit - n_batches - refine_units,
            }
        } else {
            Step::Group {
                chunk: unit - self.first_group_unit(),
            }
        }
    }

    pub fn unit(&self, step: Step) -> usize {
        let (n_batches, n_chunks) = (self.batches.len(), self.chunks.len());
        match step {
            Step::Cluster { batch } => batch,
            Step::Refine { epoch, chunk } => n_batches + epoch as usize * n_chunks + chunk,
            Step::Final { chunk } => n_batches + self.refine_epochs as usize * n_chunks + chunk,
            Step::Group { chunk } => self.first_group_unit() + chunk,
        }
    }

    /// The plan positions a step covers (none for a grouping step, which covers topics).
    pub fn positions(&self, step: Step) -> Range<usize> {
        match step {
            Step::Cluster { batch } => self.batches[batch].clone(),
            Step::Refine { chunk, .. } | Step::Final { chunk } => self.chunks[chunk].clone(),
            Step::Group { .. } => 0..0,
        }
    }

    /// The topic ids a grouping step covers.
    pub fn topics(&self, chunk: usize) -> Range<usize> {
        self.topic_ranges[chunk].clone()
    }

    /// Whether a step ends with a new model, and so writes a checkpoint.
    pub fn writes_checkpoint(&self, step: Step) -> bool {
        match step {
            Step::Cluster { .. } => true,
            Step::Refine { chunk, .. } => chunk + 1 == self.chunks.len(),
            Step::Final { .. } | Step::Group { .. } => false,
        }
    }

    /// The refinement units after epoch `epoch`: skipped when refinement ends with it.
    pub fn refine_units_after(&self, epoch: u32) -> Range<usize> {
        let next = self.unit(Step::Refine {
            epoch: epoch + 1,
            chunk: 0,
        });
        let final_pass = self.unit(Step::Final { chunk: 0 });
        next.min(final_pass)..final_pass
    }

    /// The items unit `unit` processes, as planned (a grouping unit's: the balanced share).
    pub fn unit_items(&self, unit: usize) -> usize {
        match self.step(unit) {
            Step::Group { chunk } => self.topics(chunk).len() * self.n_items / self.n_topics.max(1),
            step => self.positions(step).len(),
        }
    }

    /// Every unit, for the `batch_runs` rows written at create.
    pub fn units(&self) -> Vec<UnitPlan> {
        (0..self.total_units())
            .map(|unit| {
                let step = self.step(unit);
                let (phase, epoch) = match step {
                    Step::Cluster { .. } => (Phase::Cluster, None),
                    Step::Refine { epoch, .. } => (Phase::Refine, Some(epoch)),
                    Step::Final { .. } => (Phase::Final, None),
                    Step::Group { .. } => (Phase::Group, None),
                };
                UnitPlan {
                    phase,
                    epoch,
                    // Topic sizes are not known yet: a grouping unit's balanced share.
                    items: self.unit_items(unit),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_run_batches_then_epochs_then_the_final_pass() {
        // 1000 items: batch 0 holds 100, then 9 batches of 100; chunks of at least 250 items.
        let plan = BatchPlan::new(1000, 5, 100, 0.1, 1);
        let schedule = Schedule::new(&plan, Some(250), 2, 5, 0);
        assert_eq!(
            schedule.n_chunks(),
            3,
            "300 + 300 + 400 (the short tail joins)"
        );
        assert_eq!(schedule.total_units(), 10 + 2 * 3 + 3);
        let steps: Vec<Step> = (0..schedule.total_units())
            .map(|u| schedule.step(u))
            .collect();
        assert_eq!(steps[9], Step::Cluster { batch: 9 });
        assert_eq!(steps[10], Step::Refine { epoch: 0, chunk: 0 });
        assert_eq!(steps[15], Step::Refine { epoch: 1, chunk: 2 });
        assert_eq!(steps[16], Step::Final { chunk: 0 });
        for (unit, &step) in steps.iter().enumerate() {
            assert_eq!(schedule.unit(step), unit);
        }
        assert!(schedule.writes_checkpoint(steps[12]) && !schedule.writes_checkpoint(steps[11]));
        assert_eq!(schedule.refine_units_after(0), 13..16);
        assert_eq!(schedule.refine_units_after(1), 16..16);
        assert_eq!(schedule.positions(steps[18]), 600..1000);
    }

    #[test]
    fn grouping_units_follow_the_final_pass_and_cover_every_topic_once() {
        let plan = BatchPlan::new(1000, 7, 100, 0.1, 1);
        let schedule = Schedule::new(&plan, Some(250), 1, 7, 3);
        let first = schedule.unit(Step::Group { chunk: 0 });
        assert_eq!(first, 10 + 3 + 3);
        assert_eq!(schedule.total_units(), first + 3);
        assert_eq!(schedule.step(first + 2), Step::Group { chunk: 2 });
        let topics: Vec<usize> = (0..3).flat_map(|c| schedule.topics(c)).collect();
        assert_eq!(topics, (0..7).collect::<Vec<_>>());
        assert!(!schedule.writes_checkpoint(Step::Group { chunk: 0 }));
        assert_eq!(schedule.units()[first].phase, Phase::Group);
    }

    #[test]
    fn without_refinement_or_chunk_size_the_final_pass_follows_the_batches() {
        let plan = BatchPlan::new(1000, 5, 100, 0.1, 1);
        let schedule = Schedule::new(&plan, None, 0, 5, 0);
        assert_eq!(schedule.total_units(), 20);
        assert_eq!(schedule.step(10), Step::Final { chunk: 0 });
        assert_eq!(
            schedule.positions(Step::Final { chunk: 3 }),
            plan.batches[3]
        );
    }
}
