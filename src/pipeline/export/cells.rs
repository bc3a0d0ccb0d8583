//! The export's output format, shared by the command line and the web API: the row types,
//! their columns and cells, and the guard against spreadsheet formula injection.

use std::borrow::Cow;

use serde::Serialize;

use crate::store::JobId;

/// The bucket of items below `--min-similarity`.
pub const NO_CLUSTER: &str = "no_cluster";

/// One exported item of an embedding run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    pub item_id: String,
    pub text: Option<String>,
    pub volume: Option<i64>,
    /// `None`: the `no_cluster` bucket.
    pub cluster_id: Option<u32>,
    pub cluster_title: String,
    pub distance: f64,
    /// The clustering batch that holds the item.
    pub batch: usize,
    /// Runs with groups: the item's page, as for keywords.
    #[serde(flatten)]
    pub page: Option<Page>,
    /// The job that added the item (the create job for the create's items); `None` in a
    /// database that did not record it.
    pub added_by: Option<JobId>,
}

/// Where an item lands in the content plan: its group, or a page of its own. Serialised under
/// the export's column names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// `None`: the item joined no group (a page of its own), or its topic is not grouped yet.
    pub group_id: Option<u32>,
    /// The group's title; an ungrouped item's own text; empty before its topic is grouped.
    #[serde(rename = "group")]
    pub title: String,
    /// Whether the item titles its page.
    #[serde(rename = "is_group_title")]
    pub is_title: bool,
}

/// One exported page-level group (or, for keyword runs, an ungrouped keyword's own page, or a
/// topic not grouped yet); `topic_id` `None` is the `no_cluster` bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterExportRow {
    pub topic_id: Option<u32>,
    pub topic: String,
    pub group_id: Option<u32>,
    /// The group's title; empty on a row that stands for a whole topic.
    pub group: String,
    pub size: u64,
    pub total_volume: i64,
    pub top_terms: Vec<String>,
}

/// One exported keyword.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeywordRow {
    pub keyword: String,
    pub volume: Option<i64>,
    /// `None`: the `no_cluster` bucket.
    pub topic_id: Option<u32>,
    pub topic: String,
    #[serde(flatten)]
    pub page: Page,
    /// Cosine similarity to the topic's centroid.
    pub similarity: f64,
    /// The job that added the keyword (the create job for the create's keywords).
    pub added_by: Option<JobId>,
    /// The keyword's values in the input's other columns, in the file's order.
    #[serde(skip)]
    pub extra: Vec<String>,
}

impl ClusterExportRow {
    /// The header of `export --clusters`: one row per page for keyword runs, per cluster for
    /// embedding runs.
    pub fn columns(keywords: bool) -> &'static [&'static str] {
        if keywords {
            &[
                "topic_id",
                "topic",
                "group_id",
                "group",
                "size",
                "total_volume",
                "top_terms",
            ]
        } else {
            &["cluster_id", "title", "size", "total_volume"]
        }
    }

    /// The row's cells under [`ClusterExportRow::columns`], as stored (see [`neutralise`]).
    pub fn cells(self, keywords: bool) -> Vec<String> {
        let (size, volume) = (self.size.to_string(), self.total_volume.to_string());
        if keywords {
            vec![
                topic_cell(self.topic_id),
                self.topic,
                group_cell(self.group_id),
                self.group,
                size,
                volume,
                self.top_terms.join("; "),
            ]
        } else {
            vec![topic_cell(self.topic_id), self.topic, size, volume]
        }
    }
}

impl KeywordRow {
    /// The header of the keyword layout, before the input's own columns.
    pub const COLUMNS: [&str; 9] = [
        "keyword",
        "volume",
        "topic_id",
        "topic",
        "group_id",
        "group",
        "is_group_title",
        "similarity",
        "added_by",
    ];

    /// The row's cells under [`KeywordRow::COLUMNS`], as stored (see [`neutralise`]).
    pub fn cells(&self) -> [String; 9] {
        [
            self.keyword.clone(),
            self.volume.map(|v| v.to_string()).unwrap_or_default(),
            topic_cell(self.topic_id),
            self.topic.clone(),
            group_cell(self.page.group_id),
            self.page.title.clone(),
            self.page.is_title.to_string(),
            format!("{:.4}", self.similarity),
            job_cell(self.added_by),
        ]
    }
}

impl ExportRow {
    /// The header of the embedding layout: `groups` adds the page-level group columns.
    pub fn columns(groups: bool) -> Vec<&'static str> {
        let mut columns = vec![
            "item_id",
            "text",
            "volume",
            "cluster_id",
            "cluster_title",
            "distance",
            "batch",
        ];
        if groups {
            columns.extend(["group_id", "group", "is_group_title"]);
        }
        columns.push("added_by");
        columns
    }

    /// The row's cells under [`ExportRow::columns`], as stored (see [`neutralise`]).
    pub fn cells(self) -> Vec<String> {
        let mut cells = vec![
            self.item_id,
            self.text.unwrap_or_default(),
            self.volume.map(|v| v.to_string()).unwrap_or_default(),
            topic_cell(self.cluster_id),
            self.cluster_title,
            self.distance.to_string(),
            self.batch.to_string(),
        ];
        if let Some(page) = self.page {
            cells.extend([
                group_cell(page.group_id),
                page.title,
                page.is_title.to_string(),
            ]);
        }
        cells.push(job_cell(self.added_by));
        cells
    }
}

/// A topic (cluster) id as exported, or the `no_cluster` bucket's.
pub fn topic_cell(id: Option<u32>) -> String {
    id.map_or_else(|| NO_CLUSTER.to_string(), |c| c.to_string())
}

/// A group id as exported: empty for none.
pub fn group_cell(id: Option<u32>) -> String {
    id.map(|g| g.to_string()).unwrap_or_default()
}

/// The `added_by` cell: the job that added the item, empty in a database from before job
/// records.
fn job_cell(id: Option<JobId>) -> String {
    id.map(|j| j.to_string()).unwrap_or_default()
}

/// OWASP's defence against CSV formula injection: a cell starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return is one a spreadsheet may evaluate (`=cmd|' /C calc'!A0`), so it gets a
/// leading apostrophe and is shown as text. A plain number (`-0.25`, `+3`, `1e-5`) is left as
/// it is: spreadsheets read it as a number, never as a formula.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit before the exponent.
fn is_plain_number(cell: &str) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut s = cell.as_bytes();
    s = s
        .strip_prefix(b"+")
        .or_else(|| s.strip_prefix(b"-"))
        .unwrap_or(s);
    let whole = digits(s);
    s = &s[whole..];
    let mut fraction = 0;
    if let Some(rest) = s.strip_prefix(b".") {
        fraction = digits(rest);
        s = &rest[fraction..];
    }
    if whole + fraction == 0 {
        return false;
    }
    if let Some(rest) = s.strip_prefix(b"e").or_else(|| s.strip_prefix(b"E")) {
        let rest = rest
            .strip_prefix(b"+")
            .or_else(|| rest.strip_prefix(b"-"))
            .unwrap_or(rest);
        let exponent = digits(rest);
        return exponent > 0 && exponent == rest.len();
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (cell, written) in [
            ("=cmd|\" /C calc\"!A0", "'=cmd|\" /C calc\"!A0"),
            ("+SUM(1,2)", "'+SUM(1,2)"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("+.e5", "'+.e5"),
            ("- 5", "'- 5"),
            ("-1e", "'-1e"),
            ("running shoes", "running shoes"),
            ("a=b", "a=b"),
            ("-0.2500", "-0.2500"),
            ("+3", "+3"),
            ("-12", "-12"),
            ("-.5", "-.5"),
            ("-1.5E-05", "-1.5E-05"),
            ("1e+5", "1e+5"),
            ("", ""),
        ] {
            assert_eq!(neutralise(cell), written, "{cell:?}");
        }
    }
}
