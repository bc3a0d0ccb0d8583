//! The create options of `POST /api/projects`: the form fields are `kbatch create`'s flags
//! without their dashes (`batch-size` or `batch_size`), with the same values and defaults.

use std::str::FromStr;

use clap::ValueEnum;

use super::ApiError;
use crate::pipeline::{Embedder, InputFormat, Metric, ReadOptions, Settings, Tuning};

/// What a create form asks for, checked field by field.
#[derive(Debug, Clone)]
pub struct CreateForm {
    pub project: String,
    pub read: ReadOptions,
    pub replace: bool,
    pub settings: Settings,
}

/// The longest project name the server takes.
pub const MAX_PROJECT: usize = 200;

/// Refuses a project name a URL path segment could not carry back, or that is too long.
pub fn check_project(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::new(400, "name the project (field \"project\")"));
    }
    if name.chars().count() > MAX_PROJECT || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            400,
            format!(
                "a project name is at most {MAX_PROJECT} characters, none of them control characters"
            ),
        ));
    }
    Ok(())
}

/// Reads the create options from a form's text fields.
pub fn create_form(fields: &[(String, String)]) -> Result<CreateForm, ApiError> {
    let mut project = None;
    let mut read = ReadOptions {
        format: None,
        keyword_column: None,
        volume_column: None,
    };
    let mut replace = false;
    let (mut groups, mut no_groups) = (false, false);
    let mut tuning = Tuning::DEFAULT;
    let mut settings = Settings {
        n_clusters: None,
        metric: None,
        min_similarity: None,
        embedder: None,
        groups: None,
        group_similarity: None,
        group_chunk_size: None,
        tuning: Tuning::DEFAULT,
    };
    for (key, value) in flags(fields)? {
        match key.as_str() {
            "project" => project = Some(value.to_string()),
            "format" => read.format = Some(choice(&key, value)?),
            "keyword-column" => read.keyword_column = Some(value.to_string()),
            "volume-column" => read.volume_column = Some(value.to_string()),
            "replace" => replace = flag(&key, value)?,
            "clusters" => settings.n_clusters = Some(number(&key, value)?),
            "metric" => settings.metric = Some(choice::<Metric>(&key, value)?),
            "min-similarity" => settings.min_similarity = Some(number(&key, value)?),
            "embedder" => settings.embedder = Some(choice::<Embedder>(&key, value)?),
            "groups" => groups = flag(&key, value)?,
            "no-groups" => no_groups = flag(&key, value)?,
            "group-similarity" => settings.group_similarity = Some(number(&key, value)?),
            "group-chunk-size" => settings.group_chunk_size = Some(number(&key, value)?),
            "batch-size" => tuning.batch_size = Some(number(&key, value)?),
            "first-batch-share" => tuning.first_batch_share = number(&key, value)?,
            "tol" => tuning.tol = number(&key, value)?,
            "max-iter" => tuning.max_iter = number(&key, value)?,
            "patience" => tuning.patience = number(&key, value)?,
            "seed" => tuning.seed = number(&key, value)?,
            "refine-epochs" => tuning.refine_epochs = number(&key, value)?,
            "pass-chunk-size" => tuning.pass_chunk_size = Some(number(&key, value)?),
            _ => {
                return Err(ApiError::new(
                    400,
                    format!("unknown field {key:?}; the fields are create's flags, and \"file\""),
                ));
            }
        }
    }
    if groups && no_groups {
        return Err(ApiError::new(400, "ask for groups or no-groups, not both"));
    }
    settings.groups = match (groups, no_groups) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    settings.tuning = tuning;
    let project = project.unwrap_or_default();
    check_project(&project)?;
    Ok(CreateForm {
        project,
        read,
        replace,
        settings,
    })
}

/// What an add form asks for: `kbatch add`'s flags, as [`create_form`] reads create's.
#[derive(Debug, Clone)]
pub struct AddForm {
    pub read: ReadOptions,
    pub min_similarity: Option<f64>,
    pub new_clusters: Option<usize>,
    pub retitle: bool,
}

/// Reads the add options from a form's text fields (the project comes from the path).
pub fn add_form(fields: &[(String, String)]) -> Result<AddForm, ApiError> {
    let mut form = AddForm {
        read: ReadOptions {
            format: None,
            keyword_column: None,
            volume_column: None,
        },
        min_similarity: None,
        new_clusters: None,
        retitle: false,
    };
    for (key, value) in flags(fields)? {
        match key.as_str() {
            "format" => form.read.format = Some(choice(&key, value)?),
            "keyword-column" => form.read.keyword_column = Some(value.to_string()),
            "volume-column" => form.read.volume_column = Some(value.to_string()),
            "min-similarity" => form.min_similarity = Some(number(&key, value)?),
            "new-clusters" => form.new_clusters = Some(number(&key, value)?),
            "retitle" => form.retitle = flag(&key, value)?,
            _ => {
                return Err(ApiError::new(
                    400,
                    format!("unknown field {key:?}; the fields are add's flags, and \"file\""),
                ));
            }
        }
    }
    Ok(form)
}

/// A form's fields under their flag names (`batch_size` reads as `batch-size`), values
/// trimmed; a field given twice is refused.
fn flags(fields: &[(String, String)]) -> Result<Vec<(String, &str)>, ApiError> {
    let mut flags: Vec<(String, &str)> = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let key = name.replace('_', "-");
        if flags.iter().any(|(seen, _)| *seen == key) {
            return Err(ApiError::new(400, format!("field {key:?} is given twice")));
        }
        flags.push((key, value.trim()));
    }
    Ok(flags)
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|_| {
        ApiError::new(
            400,
            format!("field {key:?}: {value:?} is not a valid number"),
        )
    })
}

fn flag(key: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" | "" => Ok(false),
        _ => Err(ApiError::new(
            400,
            format!("field {key:?}: {value:?} is not true or false"),
        )),
    }
}

/// One of a flag's values, named as on the command line.
fn choice<T: ValueEnum>(key: &str, value: &str) -> Result<T, ApiError> {
    T::from_str(value, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        ApiError::new(
            400,
            format!(
                "field {key:?}: {value:?} is not one of {}",
                names.join(", ")
            ),
        )
    })
}

/// The stored extension of an upload in `format`.
pub fn format_extension(format: InputFormat) -> &'static str {
    match format {
        InputFormat::KeywordsCsv | InputFormat::EmbeddingsCsv => "csv",
        InputFormat::KeywordsTxt => "txt",
        InputFormat::Jsonl => "jsonl",
        InputFormat::Npy => "npy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fields_are_create_flags_with_its_defaults() {
        let form = create_form(&fields(&[
            ("project", "socks"),
            ("batch_size", "50"),
            ("embedder", "lexical"),
            ("no-groups", "on"),
            ("format", "keywords-txt"),
        ]))
        .unwrap();
        assert_eq!(form.project, "socks");
        assert_eq!(form.settings.tuning.batch_size, Some(50));
        assert_eq!(form.settings.tuning.seed, Tuning::DEFAULT.seed);
        assert_eq!(form.settings.embedder, Some(Embedder::Lexical));
        assert_eq!(form.settings.groups, Some(false));
        assert_eq!(form.read.format, Some(InputFormat::KeywordsTxt));
    }

    #[test]
    fn bad_fields_are_named() {
        for (pairs, says) in [
            (
                vec![("project", "p"), ("batch-size", "many")],
                "\"batch-size\"",
            ),
            (
                vec![("project", "p"), ("metric", "manhattan")],
                "cosine, euclidean",
            ),
            (
                vec![("project", "p"), ("cluster", "3")],
                "unknown field \"cluster\"",
            ),
            (
                vec![("project", "p"), ("seed", "1"), ("seed", "2")],
                "twice",
            ),
            (vec![("batch-size", "5")], "name the project"),
            (vec![("project", "a\u{7}b")], "control characters"),
        ] {
            let err = create_form(&fields(&pairs)).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(says), "{says}: {}", err.message);
        }
    }
}
