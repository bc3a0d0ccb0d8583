//! Integration tests: one binary that drives the real `kbatch` executable on `fixtures/`.

mod bad_input;
mod cli;
mod crash;
mod export;
mod hostile;
mod jobs;
mod keyword_tools;
mod living;
mod minilm;
mod quality;
mod resume_property;
mod serve;
mod support;
mod tidy;
