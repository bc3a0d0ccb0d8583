//! `resume`: continue a project from its last committed unit, with the recorded config.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::config::{RunConfig, stored_config};
use super::create::attach_model;
use super::engine::Engine;
use super::events::{Outcome, Progress};
use super::{Embedder, add, jobs, living, lock, refit};
use crate::error::{Error, Result};
use crate::input::{self, Dataset};
use crate::store::{JobKind, RunRecord, RunStatus, Store};

/// Continues `project` from its last committed unit. `input_override` points at a moved input
/// file; either way its blake3 must match the one recorded at create, as the sentence model's
/// (found in `model_dir`, else the default place) must match the one it was created with.
pub fn resume(
    db: &Path,
    project: &str,
    input_override: Option<&Path>,
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let command_start = Instant::now();
    lock::check_directory(db)?;
    // A file that is not kbatch's (or is a newer kbatch's) is refused before the lock file is
    // made beside it; an older kbatch's is migrated below.
    match Store::open_read_only(db) {
        Ok(_) | Err(Error::SchemaTooOld { .. }) => {}
        Err(e) => return Err(e),
    }
    let lock = lock::ProjectLock::acquire(db, project)?;
    let store = Store::open(db)?;
    let run = store.find_run(project)?;
    // The job whose units are not all done (or, should the last one be done but its end
    // unrecorded, the job that ran it): the create's, or an add's or a refit's.
    let plans = store.job_plans(run.run_id)?;
    let rows = store.batch_rows(run.run_id)?;
    let unit = match rows.iter().position(|r| !r.status.is_done()) {
        Some(pending) => pending,
        None if run.status == RunStatus::Succeeded => return Ok(Outcome::AlreadySucceeded),
        None => rows.len().saturating_sub(1),
    };
    let owner = plans.iter().find(|p| p.units().contains(&unit)).cloned();
    // The items of the job it continues: an add's new items, else every item.
    let items = owner
        .as_ref()
        .map_or_else(|| living::totals(&run, &plans).0, |plan| plan.n_items);
    let job = store.start_job(project, JobKind::Resume, items as i64)?;
    lock.set_job(job);
    progress.job_started(job);
    // From here on, a failure is the job's: recorded with it, then reported.
    let resumed = match owner {
        Some(plan) => {
            let input = Inputs {
                create_input: input_override,
                model_dir,
            };
            let continued = store
                .reset_abandoned(run.run_id)
                .and_then(|()| match plan.kind {
                    JobKind::Refit => {
                        refit::continue_refit(store, run, plan, job, &input, progress)
                    }
                    _ => add::continue_add(store, run, plan, job, &input, progress),
                });
            match continued {
                Ok(units) => return units.drive(command_start, progress, cancel),
                Err(e) => Err(e),
            }
        }
        None => read_again(&run, input_override, model_dir, progress).and_then(|(config, data)| {
            let plan = config.plan(data.len());
            store
                .reset_abandoned(run.run_id)
                .and_then(|()| Engine::new(store, run, config, plan, &data))
                .and_then(|engine| engine.for_job(job).run(command_start, progress, cancel))
        }),
    };
    resumed.map_err(|e| jobs::failed(db, job, e))
}

/// Where a job that continues finds what it needs beyond the database.
pub(super) struct Inputs<'a> {
    /// The create's input, if it moved since create.
    pub create_input: Option<&'a Path>,
    /// The sentence model's directory, if not the default.
    pub model_dir: Option<&'a Path>,
}

/// The run's config, and its input read again and checked against the recorded hash (and the
/// sentence model against the recorded one).
fn read_again(
    run: &RunRecord,
    input_override: Option<&Path>,
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<(RunConfig, Dataset)> {
    let config = stored_config(run)?;
    let mut data = read_input_again(run, &config, input_override)?;
    if config.embedder == Embedder::Minilm {
        let found = attach_model(&mut data, model_dir, progress)?;
        check_model(run, &config, &found)?;
    }
    Ok((config, data))
}

/// Refuses a sentence model other than the one the project was created with (`found`: the
/// blake3 of its weights).
pub(super) fn check_model(run: &RunRecord, config: &RunConfig, found: &str) -> Result<()> {
    if config.model_blake3.as_deref() == Some(found) {
        return Ok(());
    }
    Err(Error::Params(format!(
        "the sentence model differs from the one project {:?} was created with \
         (weights blake3 {found}, recorded {}); point --model-dir at that model",
        run.project,
        config.model_blake3.as_deref().unwrap_or("none")
    )))
}

/// The run's input read again (from `input_override` if it moved) and checked against the
/// hash recorded at create.
pub(super) fn read_input_again(
    run: &RunRecord,
    config: &RunConfig,
    input_override: Option<&Path>,
) -> Result<Dataset> {
    let input_path =
        input_override.map_or_else(|| PathBuf::from(&run.input_path), Path::to_path_buf);
    let changed = |found: String| Error::InputChanged {
        path: input_path.clone(),
        recorded: run.input_blake3.clone(),
        found,
    };
    // Reading hashes the bytes too; only a file that no longer parses is hashed again, to
    // tell "you changed it" from "it was always bad".
    match input::read_input(&input_path, &config.read_options()) {
        Ok(data) if data.blake3 == run.input_blake3 => Ok(data),
        Ok(data) => Err(changed(data.blake3)),
        Err(e) => match input::hash_file(&input_path) {
            Ok(found) if found != run.input_blake3 => Err(changed(found)),
            _ => Err(e),
        },
    }
}
