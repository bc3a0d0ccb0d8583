//! `kbatch delete`: removes a project without asking, and says what went.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::say;
use crate::pipeline;

#[derive(Args)]
pub(super) struct DeleteArgs {
    #[arg(long)]
    pub(super) project: String,
}

pub(super) fn run(db: &Path, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let deleted = pipeline::delete(db, &args.project)?;
    say(&format!(
        "deleted project {}: {} items, {} batches, from {}",
        args.project,
        deleted.n_items,
        deleted.n_units,
        db.display()
    ));
    Ok(ExitCode::SUCCESS)
}
