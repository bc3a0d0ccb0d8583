//! `kbatch serve`: the local web UI and JSON job API, until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{install_ctrl_c, say};
use crate::web::serve::{self, Log, ServeOptions};

#[derive(Args)]
pub(super) struct ServeArgs {
    /// Where to listen (port 0: any free port; the address is printed). Anything beyond
    /// loopback needs --token
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub(super) addr: String,
    /// A bearer token every request must carry (Authorization: Bearer <token>, or ?token= on
    /// a page's address) [default: $KBATCH_TOKEN, else none]
    #[arg(long, value_name = "TOKEN")]
    pub(super) token: Option<String>,
    /// The largest upload, in bytes; K, M and G suffixes are binary (1M = 1,048,576)
    #[arg(long, default_value = "1G", value_name = "SIZE", value_parser = parse_size)]
    pub(super) max_upload: u64,
    /// Directory of the sentence model, for the jobs the server runs [default: as create]
    #[arg(long, value_name = "DIR")]
    pub(super) model_dir: Option<PathBuf>,
    /// Print a line per request on stderr: method, path (without its query), status and
    /// milliseconds
    #[arg(long)]
    pub(super) log_requests: bool,
}

/// Server events, one line each on stderr.
struct Stderr;

impl Log for Stderr {
    fn line(&self, line: &str) {
        say(&format!("kbatch serve: {line}"));
    }
}

pub(super) fn run(db: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let stop = install_ctrl_c()?;
    let options = ServeOptions {
        db: db.to_path_buf(),
        addr: args.addr,
        token: args
            .token
            .or_else(|| std::env::var("KBATCH_TOKEN").ok())
            .filter(|t| !t.is_empty()),
        max_upload: args.max_upload,
        model_dir: args.model_dir,
        log_requests: args.log_requests,
    };
    let stopped = serve::run(options, stop, Arc::new(Stderr))?;
    say(&format!(
        "kbatch serve: stopped{}",
        match stopped {
            0 => String::new(),
            n => format!(
                "; {n} running job(s) interrupted after their last commit (they resume when \
                 kbatch serve starts again, or with kbatch resume)"
            ),
        }
    ));
    Ok(ExitCode::SUCCESS)
}

/// `1048576`, `512K`, `100M`, `1G` (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 10),
        Some((i, 'm' | 'M')) => (&text[..i], 20),
        Some((i, 'g' | 'G')) => (&text[..i], 30),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a size such as 1048576, 512K, 100M or 1G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("-1M").is_err());
    }
}
