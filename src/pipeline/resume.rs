//! `resume`: continue a project from its last committed unit, with the recorded config.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::config::{RunConfig, stored_config};
use super::create::attach_model;
use super::engine::Engine;
use super::events::{Outcome, Progress};
use super::{Embedder, jobs, lock};
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
    if run.status == RunStatus::Succeeded {
        return Ok(Outcome::AlreadySucceeded);
    }
    let job = store.start_job(project, JobKind::Resume, run.n_items as i64)?;
    lock.set_job(job);
    progress.job_started(job);
    // From here on, a failure is the job's: recorded with it, then reported.
    let (config, data) = match read_again(&run, input_override, model_dir, progress) {
        Ok(read) => read,
        Err(e) => return Err(jobs::failed(db, job, e)),
    };
    let plan = config.plan(data.len());
    let engine = store
        .reset_abandoned(run.run_id)
        .and_then(|()| Engine::new(store, run, config, plan, &data));
    match engine {
        Ok(engine) => engine.for_job(job).run(command_start, progress, cancel),
        Err(e) => Err(jobs::failed(db, job, e)),
    }
}

/// The run's config, and its input read again and checked against the recorded hash (and the
/// sentence model against the recorded one).
fn read_again(
    run: &RunRecord,
    input_override: Option<&Path>,
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<(RunConfig, Dataset)> {
    let project = &run.project;
    let config = stored_config(run)?;
    let input_path =
        input_override.map_or_else(|| PathBuf::from(&run.input_path), Path::to_path_buf);
    let changed = |found: String| Error::InputChanged {
        path: input_path.clone(),
        recorded: run.input_blake3.clone(),
        found,
    };
    // Reading hashes the bytes too; only a file that no longer parses is hashed again, to
    // tell "you changed it" from "it was always bad".
    let mut data = match input::read_input(&input_path, &config.read_options()) {
        Ok(data) if data.blake3 == run.input_blake3 => data,
        Ok(data) => return Err(changed(data.blake3)),
        Err(e) => match input::hash_file(&input_path) {
            Ok(found) if found != run.input_blake3 => return Err(changed(found)),
            _ => return Err(e),
        },
    };
    if config.embedder == Embedder::Minilm {
        let found = attach_model(&mut data, model_dir, progress)?;
        if config.model_blake3.as_deref() != Some(found.as_str()) {
            return Err(Error::Params(format!(
                "the sentence model differs from the one project {project:?} was created with \
                 (weights blake3 {found}, recorded {}); resume with --model-dir pointing at it",
                config.model_blake3.as_deref().unwrap_or("none")
            )));
        }
    }
    Ok((config, data))
}
