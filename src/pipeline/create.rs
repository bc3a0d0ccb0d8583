//! `create`: read and validate the input, write the project, then run it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::config::{Settings, resolve_config};
use super::engine::{Engine, placements};
use super::events::{IngestNotes, Outcome, Progress};
use super::{Embedder, jobs, lock};
use crate::core::embedder::SentenceEmbedder;
use crate::embed;
use crate::error::{Error, Result};
use crate::input::{self, Dataset, ItemKind, ReadOptions, Vectors};
use crate::store::{NewRun, Store};

/// What `create` is asked to do.
#[derive(Debug, Clone)]
pub struct CreateRequest<'a> {
    pub project: &'a str,
    pub input: &'a Path,
    /// The input's layout and, for keyword CSVs, its column names.
    pub read: ReadOptions,
    /// Where the sentence model is; `None`: [`embed::default_model_dir`].
    pub model_dir: Option<&'a Path>,
    /// Replace a project of the same name (which no live process may be running).
    pub replace: bool,
    pub settings: Settings,
}

/// Reads and validates the input, then creates the project and runs it to completion (or until
/// `cancel` is set). Bad input or parameters fail before anything is written.
pub fn create(
    db: &Path,
    request: &CreateRequest<'_>,
    progress: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Outcome> {
    let CreateRequest {
        project,
        input: input_path,
        ref read,
        model_dir,
        replace,
        ref settings,
    } = *request;
    let command_start = Instant::now();
    lock::check_directory(db)?;
    // Fail fast, before a possibly long ingest, on a file that is not kbatch's or a project
    // that exists; read-only, so bad input still leaves the file as it was. A database too old
    // to read as it is is migrated once the input is read.
    match Store::open_read_only(db).and_then(|store| store.find_run(project)) {
        Err(Error::ProjectNotFound(_) | Error::NoDatabase(_) | Error::SchemaTooOld { .. }) => {}
        Ok(_) => {
            if let Some(locked) = lock::locked(db, project) {
                return Err(locked);
            }
            if !replace {
                return Err(Error::ProjectExists(project.to_string()));
            }
        }
        Err(e) => return Err(e),
    }
    let mut data = input::read_input(input_path, read)?;
    progress.ingested(&IngestNotes {
        input: input_path.to_path_buf(),
        n_items: data.len(),
        merged_duplicates: data.merged_duplicates,
        skipped_blank: data.skipped_blank,
        columns: data.columns.clone(),
    });
    // The model goes in first: it sets the dimension that defaults are sized by.
    let embedder = settings.embedder_for(data.kind);
    let model_blake3 = match embedder {
        Embedder::Minilm if data.kind == ItemKind::Keywords => {
            Some(attach_model(&mut data, model_dir, progress)?)
        }
        _ => None,
    };
    let mut config = resolve_config(&data, input_path, settings)?;
    config.model_blake3 = model_blake3;
    config.keyword_column = read.keyword_column.clone();
    config.volume_column = read.volume_column.clone();
    let plan = config.plan(data.len());
    let lock = lock::ProjectLock::acquire(db, project)?;
    let mut store = Store::open(db)?;
    let absolute = std::path::absolute(input_path).map_err(|e| Error::io(input_path, e))?;
    let config_json = serde_json::to_string(&config).expect("config serialises");
    let placements = placements(&plan);
    let units = config.schedule(&plan).units();
    let job = store.create_run(&NewRun {
        project,
        replace,
        job_items: data.len() as i64,
        config_json,
        seed: config.tuning.seed,
        input_path: &absolute.to_string_lossy(),
        input_blake3: &data.blake3,
        dim: data.dim(),
        n_clusters: config.n_clusters,
        n_items: data.len(),
        ids: data.ids.as_deref(),
        texts: data.texts.as_deref(),
        volumes: data.volumes.as_deref(),
        extra_columns: data.extra.as_ref().map(|e| e.names.as_slice()),
        extra: data.extra.as_ref().map(|e| e.values.as_slice()),
        placements: &placements,
        units,
    })?;
    lock.set_job(job);
    progress.job_started(job);
    let run = store.find_run(project)?;
    match Engine::new(store, run, config, plan, &data) {
        Ok(engine) => engine.for_job(job).run(command_start, progress, cancel),
        Err(e) => Err(jobs::failed(db, job, e)),
    }
}

/// Loads the sentence model into `data` (a keyword dataset), installing it first if it is
/// missing, and returns the blake3 of its weights.
pub(super) fn attach_model(
    data: &mut Dataset,
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<String> {
    let (model, weights) = load_model(model_dir, progress)?;
    data.vectors = Vectors::Model(model);
    Ok(weights)
}

/// The sentence model (installed first if it is missing), and the blake3 of its weights.
pub(super) fn load_model(
    model_dir: Option<&Path>,
    progress: &mut dyn Progress,
) -> Result<(Box<dyn SentenceEmbedder>, String)> {
    let dir = model_dir.map_or_else(embed::default_model_dir, Path::to_path_buf);
    if !embed::install::is_installed(&dir) {
        progress.installing_model(&dir);
        embed::install::install(&dir, progress.shows_progress())?;
    }
    let model = embed::MiniLm::load(&dir)?;
    let weights = input::hash_file(&dir.join(embed::WEIGHTS_FILE))?;
    Ok((Box::new(model), weights))
}

/// `kbatch install-model`: installs the sentence model into `model_dir` (else the default
/// place) unless it is there; returns the directory.
pub fn install_model(model_dir: Option<&Path>, progress: &mut dyn Progress) -> Result<PathBuf> {
    let dir = model_dir.map_or_else(embed::default_model_dir, Path::to_path_buf);
    if !embed::install::is_installed(&dir) {
        progress.installing_model(&dir);
        embed::install::install(&dir, progress.shows_progress())?;
    }
    embed::MiniLm::load(&dir)?;
    Ok(dir)
}
