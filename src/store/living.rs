//! Living projects: an `add` or a `refit` starts in one transaction that records its job, its
//! plan and its units (and, for an add, its new items); its units then commit through
//! [`Store::commit_unit`]. Also the reads these jobs need: their plans, the clusters' admission
//! thresholds, the items, a refit's baseline.

use rusqlite::{Connection, params};

use super::codec::{self, EncodedState, Place};
use super::commit::write_vectors;
use super::jobs::insert_job;
use super::read::load_items;
use super::records::{
    ItemRow, JobId, JobKind, JobPlan, JobState, NewAddition, NewRefit, RunId, RunStatus, UnitPlan,
};
use super::{NOW, Store};
use crate::core::distance::Nearest;
use crate::error::{Error, Result};

impl Store {
    /// Starts an `add`: records its job (running) and plan, writes its new items (rows and,
    /// for embedding inputs, vectors), the volumes it changes, the admission thresholds it
    /// derived and one pending `batch_runs` row per unit, and marks the run running; all in one
    /// transaction. An add with no new item records its job and volumes only.
    pub fn start_addition(&mut self, new: &NewAddition<'_>) -> Result<JobId> {
        let tx = self.begin_write()?;
        let job = insert_job(
            &tx,
            new.project,
            JobKind::Add,
            JobState::Running,
            new.job_items,
        )?;
        {
            let mut update =
                tx.prepare("UPDATE items SET volume = ?3 WHERE run_id = ?1 AND item_idx = ?2")?;
            for &(item, volume) in new.volume_updates {
                update.execute(params![new.run_id, item as i64, volume])?;
            }
        }
        if new.n_items > 0 {
            insert_plan(
                &tx,
                new.run_id,
                job,
                JobKind::Add,
                new.first_unit,
                &new.units,
                new.first_item..new.first_item + new.n_items,
                &new.plan_json,
            )?;
            let mut insert = tx.prepare(
                "INSERT INTO items (run_id, item_idx, item_id, text, volume, batch_number,
                                    position, extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for item in new.items {
                let row = &item.row;
                insert.execute(params![
                    new.run_id,
                    row.item_idx as i64,
                    row.item_id,
                    row.text,
                    row.volume,
                    item.unit as i64,
                    row.item_idx as i64,
                    row.extra,
                ])?;
            }
            for (positions, vectors) in &new.vectors {
                write_vectors(&tx, new.run_id, positions.start, positions.len(), vectors)?;
            }
            let mut admit = tx.prepare(
                "INSERT INTO admission (run_id, cluster_id, sq_dist) VALUES (?1, ?2, ?3)",
            )?;
            for &(cluster, sq_dist) in new.admission {
                admit.execute(params![new.run_id, cluster, f64::from(sq_dist)])?;
            }
            set_running(&tx, new.run_id)?;
        }
        tx.commit()?;
        Ok(job)
    }

    /// Starts a `refit`: records its job and plan (with every item's label before it), its
    /// pending units, drops the page-level groups (it regroups at its end) and the admission
    /// thresholds (it moves the centroids they were measured against), and marks the run
    /// running; all in one transaction.
    pub fn start_refit(&mut self, new: &NewRefit<'_>) -> Result<JobId> {
        let tx = self.begin_write()?;
        let job = insert_job(
            &tx,
            new.project,
            JobKind::Refit,
            JobState::Running,
            new.job_items,
        )?;
        insert_plan(
            &tx,
            new.run_id,
            job,
            JobKind::Refit,
            new.first_unit,
            &new.units,
            0..new.n_items,
            &new.plan_json,
        )?;
        tx.execute(
            "UPDATE job_plans SET baseline = ?3, baseline_checksum = ?4
             WHERE run_id = ?1 AND job_id = ?2",
            params![new.run_id, job, new.baseline.bytes, new.baseline.checksum],
        )?;
        for table in ["item_groups", "groups", "admission"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run_id = ?1"),
                [new.run_id],
            )?;
        }
        set_running(&tx, new.run_id)?;
        tx.commit()?;
        Ok(job)
    }

    /// The adds and refits of a run, in the order they started (none before schema v8).
    pub fn job_plans(&self, run_id: RunId) -> Result<Vec<JobPlan>> {
        if !self.has_living() {
            return Ok(Vec::new());
        }
        load_plans(&self.conn, run_id)
    }

    /// The admission thresholds recorded so far: (cluster, squared distance).
    pub fn admission(&self, run_id: RunId) -> Result<Vec<(u32, f32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT cluster_id, sq_dist FROM admission WHERE run_id = ?1 ORDER BY cluster_id",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, f64>(1)? as f32))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every item row of a run, by item index (none for items that are only vectors).
    pub fn items(&self, run_id: RunId) -> Result<Vec<ItemRow>> {
        load_items(&self.conn, run_id, self.has_groups())
    }

    /// The headers of the input's other columns (keyword files), as recorded at create.
    pub fn extra_columns(&self, run_id: RunId) -> Result<Vec<String>> {
        let json: Option<String> = self.conn.query_row(
            "SELECT extra_columns FROM runs WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )?;
        parse_columns(json)
    }

    /// Every item's label before refit `plan` began, by plan position.
    pub fn refit_baseline(&self, run_id: RunId, plan: &JobPlan) -> Result<Vec<Nearest>> {
        let (bytes, checksum): (Vec<u8>, String) = self.conn.query_row(
            "SELECT baseline, baseline_checksum FROM job_plans WHERE run_id = ?1 AND job_id = ?2",
            params![run_id, plan.job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let place = Place::baseline(run_id, plan.first_unit, plan.n_items);
        codec::decode_labels(&bytes, &checksum, self.seal(place))
            .map_err(|e| Error::CorruptAssignments {
                start: 0,
                end: plan.n_items as i64,
                written_by: plan.first_unit as i64 - 1,
                reason: format!("the labels before the refit: {e}"),
            })
            .and_then(|labels| {
                if labels.len() == plan.n_items {
                    Ok(labels)
                } else {
                    Err(Error::CorruptAssignments {
                        start: 0,
                        end: plan.n_items as i64,
                        written_by: plan.first_unit as i64 - 1,
                        reason: "the labels before the refit are incomplete".into(),
                    })
                }
            })
    }

    /// Units planned for the run so far (done or not).
    pub fn unit_count(&self, run_id: RunId) -> Result<usize> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM batch_runs WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }
}

/// Sealed baseline labels of a refit's items (computed before its start transaction opens).
pub fn encode_baseline(labels: &[Nearest], run_id: RunId, first_unit: usize) -> EncodedState {
    let place = Place::baseline(run_id, first_unit, labels.len());
    codec::encode_labels(labels, codec::Seal::Keyed(place))
}

#[allow(clippy::too_many_arguments)]
fn insert_plan(
    tx: &Connection,
    run_id: RunId,
    job: JobId,
    kind: JobKind,
    first_unit: usize,
    units: &[UnitPlan],
    items: std::ops::Range<usize>,
    plan_json: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO job_plans (run_id, job_id, kind, first_unit, n_units, first_item, n_items,
                                plan)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            run_id,
            job,
            kind,
            first_unit as i64,
            units.len() as i64,
            items.start as i64,
            items.len() as i64,
            plan_json
        ],
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO batch_runs (run_id, batch_number, phase, epoch, batch_size)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, unit) in units.iter().enumerate() {
        insert.execute(params![
            run_id,
            (first_unit + i) as i64,
            unit.phase.as_str(),
            unit.epoch,
            unit.items as i64
        ])?;
    }
    Ok(())
}

fn set_running(tx: &Connection, run_id: RunId) -> Result<()> {
    tx.execute(
        &format!(
            "UPDATE runs SET status = ?2, error = NULL, finished_at = NULL,
                    started_at = coalesce(started_at, {NOW})
             WHERE run_id = ?1"
        ),
        params![run_id, RunStatus::Running.as_str()],
    )?;
    Ok(())
}

pub(super) fn load_plans(conn: &Connection, run_id: RunId) -> Result<Vec<JobPlan>> {
    let mut stmt = conn.prepare(
        "SELECT job_id, kind, first_unit, n_units, first_item, n_items, new_clusters, plan
         FROM job_plans WHERE run_id = ?1 ORDER BY first_unit",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        Ok(JobPlan {
            job_id: r.get(0)?,
            kind: r.get(1)?,
            first_unit: r.get::<_, i64>(2)? as usize,
            n_units: r.get::<_, i64>(3)? as usize,
            first_item: r.get::<_, i64>(4)? as usize,
            n_items: r.get::<_, i64>(5)? as usize,
            new_clusters: r.get::<_, i64>(6)? as usize,
            plan: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn parse_columns(json: Option<String>) -> Result<Vec<String>> {
    match json {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| Error::Params(format!("the stored input columns are unreadable: {e}"))),
        None => Ok(Vec::new()),
    }
}
