//! The Idea Bank's rules: what an idea and a category may hold, and the status workflow
//! (new → review | in-progress; review → in-progress | rejected; in-progress → completed | new; completed and
//! rejected are final). Storage and HTTP sit elsewhere; every change path calls [`check_transition`].

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Low, Priority::Medium, Priority::High, Priority::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s.trim().to_ascii_lowercase())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    New,
    Review,
    InProgress,
    Completed,
    Rejected,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::New, Status::Review, Status::InProgress, Status::Completed, Status::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Review => "review",
            Status::InProgress => "in-progress",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        let s = if s == "in progress" || s == "inprogress" { "in-progress".to_string() } else { s };
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Where an idea in this status may go next.
    pub fn allowed(self) -> &'static [Status] {
        match self {
            Status::New => &[Status::Review, Status::InProgress],
            Status::Review => &[Status::InProgress, Status::Rejected],
            Status::InProgress => &[Status::Completed, Status::New],
            Status::Completed | Status::Rejected => &[],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

impl TransitionError {
    pub fn allowed(&self) -> Vec<&'static str> {
        self.from.allowed().iter().map(|s| s.as_str()).collect()
    }
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allowed = self.allowed();
        if allowed.is_empty() {
            write!(f, "an idea in {} is final and cannot move to {}", self.from.as_str(), self.to.as_str())
        } else {
            write!(
                f,
                "cannot move from {} to {}; allowed: {}",
                self.from.as_str(),
                self.to.as_str(),
                allowed.join(", ")
            )
        }
    }
}

/// Staying in the same status is not a move and is always fine.
pub fn check_transition(from: Status, to: Status) -> Result<(), TransitionError> {
    if from == to || from.allowed().contains(&to) {
        Ok(())
    } else {
        Err(TransitionError { from, to })
    }
}

/// A field and why its value is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

pub fn check_title(t: &str) -> Result<String, Invalid> {
    let t = t.trim();
    let n = t.chars().count();
    if n == 0 || n > 200 {
        return Err(invalid("title", "title: 1 to 200 characters"));
    }
    Ok(t.to_string())
}

pub fn check_description(d: &str) -> Result<String, Invalid> {
    let d = d.trim();
    let n = d.chars().count();
    if n == 0 || n > 2000 {
        return Err(invalid("description", "description: 1 to 2000 characters"));
    }
    Ok(d.to_string())
}

/// Trimmed, de-duplicated, each 1–50 characters; at most 50 tags.
pub fn check_tags(tags: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        let n = t.chars().count();
        if n == 0 || n > 50 {
            return Err(invalid("tags", format!("tags: each 1 to 50 characters ({t:?})")));
        }
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    if out.len() > 50 {
        return Err(invalid("tags", "tags: at most 50"));
    }
    Ok(out)
}

pub fn check_metadata(m: &serde_json::Value) -> Result<(), Invalid> {
    if !m.is_object() {
        return Err(invalid("metadata", "metadata: a JSON object"));
    }
    if m.to_string().len() > 16 * 1024 {
        return Err(invalid("metadata", "metadata: at most 16 KiB"));
    }
    Ok(())
}

/// Lower-case letters, digits and hyphens, 1–50 characters, not starting or ending with a hyphen.
pub fn check_category_name(n: &str) -> Result<(), Invalid> {
    let ok = (1..=50).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid("name", "name: lower-case letters, digits and hyphens (such as gestao-riscos)"))
    }
}

pub fn check_color(c: &str) -> Result<(), Invalid> {
    let b = c.as_bytes();
    if b.len() == 7 && b[0] == b'#' && b[1..].iter().all(u8::is_ascii_hexdigit) {
        Ok(())
    } else {
        Err(invalid("color", "color: #RRGGBB"))
    }
}

/// The original system's categories: (name, display name, color).
pub const DEFAULT_CATEGORIES: [(&str, &str, &str); 6] = [
    ("documentacao", "Documentação", "#3B82F6"),
    ("coleta-dados", "Coleta de dados", "#10B981"),
    ("banco-dados", "Banco de dados", "#8B5CF6"),
    ("analise-dados", "Análise de dados", "#F59E0B"),
    ("gestao-riscos", "Gestão de riscos", "#EF4444"),
    ("dashboard", "Dashboard", "#06B6D4"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_workflow() {
        use Status::*;
        for (from, to) in [
            (New, Review),
            (New, InProgress),
            (Review, InProgress),
            (Review, Rejected),
            (InProgress, Completed),
            (InProgress, New),
        ] {
            assert!(check_transition(from, to).is_ok(), "{from:?} → {to:?}");
        }
        let e = check_transition(New, Completed).unwrap_err();
        assert_eq!(e.allowed(), vec!["review", "in-progress"]);
        assert!(e.to_string().contains("allowed: review, in-progress"));
        assert!(check_transition(Completed, New).unwrap_err().to_string().contains("final"));
        assert!(check_transition(Rejected, Review).is_err());
        assert!(check_transition(Review, Review).is_ok());
    }

    #[test]
    fn parsing_and_validation() {
        assert_eq!(Status::parse("In_Progress"), Some(Status::InProgress));
        assert_eq!(Status::parse("done"), None);
        assert_eq!(Priority::parse("HIGH"), Some(Priority::High));
        assert_eq!(Priority::parse("urgent"), None);
        assert!(check_title("  ").is_err() && check_title(&"x".repeat(201)).is_err() && check_title("ok").is_ok());
        assert!(check_description(&"é".repeat(2000)).is_ok() && check_description(&"é".repeat(2001)).is_err());
        assert_eq!(check_tags(&["a".into(), " a ".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(check_tags(&["".into()]).is_err());
        assert!(check_metadata(&serde_json::json!([1])).is_err());
        assert!(
            check_category_name("gestao-riscos").is_ok()
                && check_category_name("Gestão").is_err()
                && check_category_name("-x").is_err()
        );
        assert!(check_color("#A1b2C3").is_ok() && check_color("red").is_err());
    }

    proptest! {
        #[test]
        fn finals_never_move_and_every_refusal_names_what_is_allowed(a in 0usize..5, b in 0usize..5) {
            let (from, to) = (Status::ALL[a], Status::ALL[b]);
            match check_transition(from, to) {
                Ok(()) => prop_assert!(from == to || from.allowed().contains(&to)),
                Err(e) => {
                    prop_assert!(!from.allowed().contains(&to));
                    prop_assert_eq!(e.allowed().len(), from.allowed().len());
                }
            }
            if matches!(from, Status::Completed | Status::Rejected) && from != to {
                prop_assert!(check_transition(from, to).is_err());
            }
        }
    }
}
