//! The web layer: `kbatch report` (one self-contained HTML file) and `kbatch serve` (a local
//! web UI and JSON job API). It sits beside the CLI, above the pipeline: it reads through
//! [`crate::pipeline::Reader`], runs jobs through `pipeline::create` and `pipeline::resume`, and
//! never speaks SQL. Pages are askama templates filled with the pipeline's values as JSON; the
//! charts and the treemap are drawn in the browser by vendored uPlot and d3-hierarchy, inlined.

mod assets;
pub mod report;
pub mod serve;
