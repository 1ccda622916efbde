//! A Markdown document with YAML front matter between `---` lines.

use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub summary: String,
    pub domain: Option<String>,
    pub doc_type: Option<String>,
    pub tags: Vec<String>,
    /// `active` unless the front matter says otherwise.
    pub status: String,
    pub last_review: Option<String>,
    pub sidebar_position: Option<i64>,
    /// Headings of the body, for search.
    pub headings: Vec<String>,
    pub body: String,
    /// The whole front matter as JSON.
    pub front_matter: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrontMatterError {
    #[error("no front matter (the file must start with a --- line)")]
    Missing,
    #[error("front matter is not closed by a --- line")]
    Unclosed,
    #[error("front matter is not valid YAML: {0}")]
    Yaml(String),
    #[error("front matter has no title")]
    NoTitle,
}

fn to_json(y: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    match y {
        Yaml::Real(s) => s.parse::<f64>().map(Value::from).unwrap_or_else(|_| Value::String(s.clone())),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .filter_map(|(k, v)| {
                    k.as_str()
                        .map(|k| (k.to_string(), to_json(v)))
                        .or_else(|| k.as_i64().map(|k| (k.to_string(), to_json(v))))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn parse_document(text: &str) -> Result<Document, FrontMatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().ok_or(FrontMatterError::Missing)?;
    if first.trim_end() != "---" {
        return Err(FrontMatterError::Missing);
    }
    let mut yaml = String::new();
    let mut closed = false;
    let mut consumed = first.len();
    for line in lines {
        consumed += line.len();
        if line.trim_end() == "---" || line.trim_end() == "..." {
            closed = true;
            break;
        }
        yaml.push_str(line);
    }
    if !closed {
        return Err(FrontMatterError::Unclosed);
    }
    let body = text[consumed..].to_string();
    let docs = YamlLoader::load_from_str(&yaml).map_err(|e| FrontMatterError::Yaml(e.to_string()))?;
    let fm = docs.first().map(to_json).unwrap_or(serde_json::Value::Null);
    let fm = if fm.is_object() { fm } else { serde_json::json!({}) };
    let title = fm.get("title").and_then(scalar).ok_or(FrontMatterError::NoTitle)?;
    let tags = match fm.get("tags") {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(serde_json::Value::String(s)) => {
            s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
        }
        _ => Vec::new(),
    };
    let headings = body
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    Ok(Document {
        title,
        summary: fm.get("summary").or_else(|| fm.get("description")).and_then(scalar).unwrap_or_default(),
        domain: fm.get("domain").and_then(scalar),
        doc_type: fm.get("type").and_then(scalar),
        tags,
        status: fm.get("status").and_then(scalar).unwrap_or_else(|| "active".into()),
        last_review: fm.get("last_review").and_then(scalar),
        sidebar_position: fm.get("sidebar_position").and_then(|v| v.as_i64()),
        headings,
        body,
        front_matter: fm,
    })
}
