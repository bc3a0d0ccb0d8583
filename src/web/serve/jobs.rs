//! The jobs a server runs: `create` and `add` from an upload, and `resume`, each on a thread of its own,
//! through the same pipeline calls as the CLI (same lock, same job record). A request waits
//! until its job is recorded, so it answers with the job's id, or with the refusal that came
//! first (bad input, a project that exists, a project another process is writing).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::Log;
use super::form::{AddForm, CreateForm};
use crate::error::{Error, Result};
use crate::pipeline::{
    self, AddRequest, CreateRequest, IngestNotes, JobId, Outcome, Progress, Reader, RunStatus,
    UnitCommitted,
};

/// How a job request went, as soon as that is known.
pub enum Started {
    /// Its job is recorded and running.
    Job(JobId),
    /// It ended without recording a job: `resume` of a finished project.
    Ended,
}

/// Runs jobs, and waits for them when the server stops.
pub struct Runner {
    db: PathBuf,
    model_dir: Option<PathBuf>,
    stop: &'static AtomicBool,
    log: Arc<dyn Log>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Runner {
    pub fn new(
        db: PathBuf,
        model_dir: Option<PathBuf>,
        stop: &'static AtomicBool,
        log: Arc<dyn Log>,
    ) -> Runner {
        Runner {
            db,
            model_dir,
            stop,
            log,
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Creates and runs a project from `input` (an upload the server keeps).
    pub fn create(&self, form: CreateForm, input: PathBuf) -> Result<Started> {
        let (db, model_dir) = (self.db.clone(), self.model_dir.clone());
        let name = form.project.clone();
        self.spawn("create", name, move |progress, stop| {
            let request = CreateRequest {
                project: &form.project,
                input: &input,
                read: form.read.clone(),
                model_dir: model_dir.as_deref(),
                replace: form.replace,
                settings: form.settings.clone(),
            };
            pipeline::create(&db, &request, progress, stop)
        })
    }

    /// Adds the items of `input` (an upload the server keeps) to `project`.
    pub fn add(&self, project: &str, form: AddForm, input: PathBuf) -> Result<Started> {
        let (db, model_dir) = (self.db.clone(), self.model_dir.clone());
        let name = project.to_string();
        self.spawn("add", name.clone(), move |progress, stop| {
            let request = AddRequest {
                project: &name,
                input: &input,
                read: form.read.clone(),
                model_dir: model_dir.as_deref(),
                min_similarity: form.min_similarity,
                new_clusters: form.new_clusters,
                retitle: form.retitle,
            };
            pipeline::add(&db, &request, progress, stop)
        })
    }

    /// Continues `project` from its last committed unit.
    pub fn resume(&self, project: &str) -> Result<Started> {
        let (db, model_dir) = (self.db.clone(), self.model_dir.clone());
        let name = project.to_string();
        self.spawn("resume", name.clone(), move |progress, stop| {
            pipeline::resume(&db, &name, None, model_dir.as_deref(), progress, stop)
        })
    }

    /// Resumes the interrupted projects whose input is one of this server's uploads (in
    /// `uploads`): the jobs a killed server left.
    pub fn resume_owned(&self, uploads: &Path) {
        let Ok(uploads) = uploads.canonicalize() else {
            return;
        };
        let Ok(reader) = Reader::open(&self.db) else {
            return;
        };
        let Ok(reports) = reader.all_status() else {
            return;
        };
        for report in reports {
            let owned = reader
                .input_path(&report.project)
                .is_ok_and(|input| input.starts_with(&uploads));
            if !owned || report.status != RunStatus::Interrupted {
                continue;
            }
            match self.resume(&report.project) {
                Ok(Started::Job(job)) => self.log.line(&format!(
                    "resuming project {:?}, interrupted when the server stopped: job {job}",
                    report.project
                )),
                Ok(Started::Ended) => {}
                Err(e) => self.log.line(&format!(
                    "project {:?} was not resumed: {e}",
                    report.project
                )),
            }
        }
    }

    /// Runs `work` on a thread of its own; returns once its job is recorded, or it ended
    /// without one.
    fn spawn(
        &self,
        kind: &'static str,
        project: String,
        work: impl FnOnce(&mut dyn Progress, &AtomicBool) -> Result<Outcome> + Send + 'static,
    ) -> Result<Started> {
        let (tx, rx) = mpsc::channel();
        let stop = self.stop;
        let log = Arc::clone(&self.log);
        let failed_silently = format!("the {kind} job of project {project:?} ended without a word");
        let thread = std::thread::Builder::new()
            .name(format!("kbatch {kind}"))
            .spawn(move || {
                super::priority::lower_this_thread();
                let mut progress = Reporter {
                    started: Some(tx),
                    job: None,
                };
                let result = work(&mut progress, stop);
                let job = progress.job;
                match (progress.started.take(), result) {
                    // Nothing was recorded: the request answers with what happened.
                    (Some(tx), Ok(_)) => drop(tx.send(Ok(Started::Ended))),
                    (Some(tx), Err(e)) => drop(tx.send(Err(e))),
                    (None, Ok(outcome)) => log.line(&ended(kind, &project, job, &outcome)),
                    (None, Err(e)) => log.line(&format!(
                        "job {} ({kind} {project:?}) failed: {e}",
                        job.unwrap_or_default()
                    )),
                }
            })
            .map_err(|e| Error::io(&self.db, e))?;
        let mut threads = self
            .threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
        drop(threads);
        rx.recv()
            .unwrap_or_else(|_| Err(Error::Params(failed_silently)))
    }

    /// Waits for every job thread (they stop between units once the stop flag is up);
    /// returns how many were still running.
    pub fn wait_all(&self) -> usize {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let running = threads.iter().filter(|t| !t.is_finished()).count();
        for thread in threads {
            let _ = thread.join();
        }
        running
    }
}

fn ended(kind: &str, project: &str, job: Option<JobId>, outcome: &Outcome) -> String {
    let job = job.unwrap_or_default();
    match outcome {
        Outcome::Succeeded(t) | Outcome::Finished(t, _) => format!(
            "job {job} ({kind} {project:?}) succeeded: {} items in {} topics, {:.1}s",
            t.n_items,
            t.n_clusters,
            t.wall.as_secs_f64()
        ),
        Outcome::AlreadySucceeded => format!("job {job} ({kind} {project:?}): already finished"),
        Outcome::Interrupted {
            done_units,
            total_units,
        } => format!(
            "job {job} ({kind} {project:?}) stopped after unit {done_units} of {total_units}; \
             it resumes when the server starts again"
        ),
    }
}

/// A job's progress, as the server needs it: only the moment its job is recorded (the rest
/// is read from the database, like any reader does).
struct Reporter {
    started: Option<Sender<Result<Started>>>,
    job: Option<JobId>,
}

impl Progress for Reporter {
    fn ingested(&mut self, _: &IngestNotes) {}

    fn job_started(&mut self, job: JobId) {
        self.job = Some(job);
        if let Some(tx) = self.started.take() {
            let _ = tx.send(Ok(Started::Job(job)));
        }
    }

    fn started(&mut self, _: &str, _: usize, _: usize) {}

    fn unit_committed(&mut self, _: &UnitCommitted) {}
}
