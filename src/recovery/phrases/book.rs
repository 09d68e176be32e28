//! Loading and validating the phrase book.
//!
//! Every problem is reported with the file, line and column it comes from,
//! so a phrase author can fix it without reading Rust.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use toml::Spanned;

use super::{Category, Level, Promise, PromiseSet};

/// Each category needs at least this many variants.
pub const MIN_VARIANTS: usize = 5;
/// Each (category, level) the runner draws from needs at least this many
/// variants that promise nothing: with fewer, a phrase would repeat back to back.
pub const MIN_ELIGIBLE: usize = 2;

/// The only placeholder a phrase may use.
const SERVICE_PLACEHOLDER: &str = "service";

const EMBEDDED_TEXT: &str = include_str!("../../../prompts/phrases.toml");
const EMBEDDED_NAME: &str = "prompts/phrases.toml (embedded)";

static EMBEDDED: LazyLock<Arc<PhraseBook>> = LazyLock::new(|| {
    // The embedded file is validated by a unit test; failing here is a build defect.
    Arc::new(
        PhraseBook::from_str(EMBEDDED_TEXT, EMBEDDED_NAME)
            .expect("embedded prompts/phrases.toml is valid"),
    )
});

/// One phrase variant as written in the book.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The template, possibly with `{service}`.
    pub text: String,
    /// `None` means the variant fits every level.
    pub level: Option<Level>,
    pub promises: Promise,
    /// 1-based line of the variant's `[[category]]` header.
    pub line: usize,
}

impl Variant {
    pub fn fits(&self, level: Level, allowed: PromiseSet) -> bool {
        self.level.is_none_or(|l| l == level) && allowed.contains(self.promises)
    }
}

/// A validated set of spoken phrases, by category.
///
/// ```
/// use voxguard::recovery::phrases::{Category, PhraseBook};
///
/// let text = r#"
/// [[recovered]]
/// text = "Good news, {service} is back."
/// promises = "none"
/// "#;
/// let err = PhraseBook::from_str(text, "mine.toml").unwrap_err();
/// // Every other category is missing; the error says which, and where.
/// assert!(err.to_string().starts_with("mine.toml"));
///
/// let book = PhraseBook::embedded();
/// assert!(book.variants(Category::Timeout).len() >= 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PhraseBook {
    source_name: String,
    by_category: Vec<Vec<Variant>>,
}

/// A problem found while loading a phrase book, with where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{source_name}{}: {problem}", location(*.line, *.column))]
pub struct PhraseBookError {
    pub source_name: String,
    /// 1-based; `None` when the problem is about something missing.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub problem: PhraseProblem,
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// What is wrong with a phrase book.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PhraseProblem {
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("not valid phrase-book TOML: {0}")]
    Syntax(String),
    #[error("unknown category `{name}` (known: {})", known_categories())]
    UnknownCategory { name: String },
    #[error("category `{0}` is missing")]
    MissingCategory(Category),
    #[error("category `{category}` has {found} variants; at least {MIN_VARIANTS} are needed")]
    TooFewVariants { category: Category, found: usize },
    #[error("a `{0}` variant has empty text")]
    EmptyText(Category),
    #[error(
        "unknown placeholder `{{{name}}}` in a `{category}` variant (the only placeholder is {{service}})"
    )]
    UnknownPlaceholder { category: Category, name: String },
    #[error("unbalanced `{{` or `}}` in a `{0}` variant")]
    UnbalancedBrace(Category),
    #[error("`level` only applies to failure categories, not to `{0}`")]
    LevelNotApplicable(Category),
    #[error("this `{0}` text already appears in the book")]
    DuplicateVariant(Category),
    #[error(
        "category `{category}` needs at least {MIN_ELIGIBLE} variants{} with promises in {promises}; it has {found}",
        level.map(|l| format!(" for level `{}`", l.as_str())).unwrap_or_default()
    )]
    MissingCoverage {
        category: Category,
        level: Option<Level>,
        promises: PromiseSet,
        found: usize,
    },
}

fn known_categories() -> String {
    Category::ALL.map(Category::as_str).join(", ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    text: Spanned<String>,
    level: Option<Spanned<Level>>,
    promises: Spanned<Promise>,
}

type RawBook = BTreeMap<Spanned<String>, Spanned<Vec<Spanned<RawVariant>>>>;

impl PhraseBook {
    /// Read and validate a phrase book file.
    pub fn load(path: impl AsRef<Path>) -> Result<PhraseBook, PhraseBookError> {
        let path = path.as_ref();
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| PhraseBookError {
            source_name: source_name.clone(),
            line: None,
            column: None,
            problem: PhraseProblem::Unreadable(err.to_string()),
        })?;
        PhraseBook::from_str(&text, &source_name)
    }

    /// Parse and validate phrase-book TOML; `source_name` names it in errors.
    #[allow(clippy::should_implement_trait)] // needs a source name, unlike FromStr
    pub fn from_str(text: &str, source_name: &str) -> Result<PhraseBook, PhraseBookError> {
        let at = |span: Option<Range<usize>>, problem: PhraseProblem| {
            let (line, column) = match span {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            PhraseBookError {
                source_name: source_name.to_string(),
                line,
                column,
                problem,
            }
        };
        let raw: RawBook = toml::from_str(text)
            .map_err(|e| at(e.span(), PhraseProblem::Syntax(e.message().to_string())))?;

        let mut by_category: Vec<Vec<Variant>> = vec![Vec::new(); Category::ALL.len()];
        let mut seen: Vec<Option<Range<usize>>> = vec![None; Category::ALL.len()];
        // Book-wide, so two categories never make the same line sound twice in a row.
        let mut texts = BTreeSet::new();
        for (name, variants) in &raw {
            let category = Category::from_name(name.get_ref()).ok_or_else(|| {
                at(
                    Some(name.span()),
                    PhraseProblem::UnknownCategory {
                        name: name.get_ref().clone(),
                    },
                )
            })?;
            seen[category.index()] = Some(name.span());
            for raw_variant in variants.get_ref() {
                let v = raw_variant.get_ref();
                let text_span = Some(v.text.span());
                let body = v.text.get_ref().trim();
                if body.is_empty() {
                    return Err(at(text_span, PhraseProblem::EmptyText(category)));
                }
                check_placeholders(body, category).map_err(|p| at(text_span.clone(), p))?;
                if let Some(level) = &v.level
                    && !category.escalates()
                {
                    return Err(at(
                        Some(level.span()),
                        PhraseProblem::LevelNotApplicable(category),
                    ));
                }
                if !texts.insert(body.to_string()) {
                    return Err(at(text_span, PhraseProblem::DuplicateVariant(category)));
                }
                by_category[category.index()].push(Variant {
                    text: body.to_string(),
                    level: v.level.as_ref().map(|l| *l.get_ref()),
                    promises: *v.promises.get_ref(),
                    line: line_column(text, raw_variant.span().start).0,
                });
            }
        }

        for category in Category::ALL {
            let Some(key_span) = seen[category.index()].clone() else {
                return Err(at(None, PhraseProblem::MissingCategory(category)));
            };
            let variants = &by_category[category.index()];
            if variants.len() < MIN_VARIANTS {
                return Err(at(
                    Some(key_span),
                    PhraseProblem::TooFewVariants {
                        category,
                        found: variants.len(),
                    },
                ));
            }
            for (level, promises) in required_coverage(category) {
                let found = variants
                    .iter()
                    .filter(|v| v.fits(level.unwrap_or(Level::First), promises))
                    .count();
                if found < MIN_ELIGIBLE {
                    let problem = PhraseProblem::MissingCoverage {
                        category,
                        level,
                        promises,
                        found,
                    };
                    return Err(at(Some(key_span), problem));
                }
            }
        }
        Ok(PhraseBook {
            source_name: source_name.to_string(),
            by_category,
        })
    }

    /// The book compiled into the binary from `prompts/phrases.toml`.
    pub fn embedded() -> Arc<PhraseBook> {
        EMBEDDED.clone()
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Every line the book can say, with `{service}` filled in with each of
    /// `display_names` (a line without it once): what a phrase audio cache
    /// renders.
    pub fn all_lines(&self, display_names: &[&str]) -> Vec<String> {
        let mut lines = Vec::new();
        for category in Category::ALL {
            for variant in self.variants(category) {
                if variant.text.contains("{service}") {
                    lines.extend(display_names.iter().map(|name| render(&variant.text, name)));
                } else {
                    lines.push(variant.text.clone());
                }
            }
        }
        lines.sort();
        lines.dedup();
        lines
    }

    pub fn variants(&self, category: Category) -> &[Variant] {
        &self.by_category[category.index()]
    }
}

/// The (level, promises) combinations the recovery layer draws for a category:
/// every level of a failure category, and the level-less draw for the rest,
/// always with only promise-free phrases allowed.
pub(crate) fn required_coverage(category: Category) -> Vec<(Option<Level>, PromiseSet)> {
    if category.escalates() {
        Level::ALL
            .iter()
            .map(|l| (Some(*l), PromiseSet::NONE_ONLY))
            .collect()
    } else {
        vec![(None, PromiseSet::NONE_ONLY)]
    }
}

fn check_placeholders(text: &str, category: Category) -> Result<(), PhraseProblem> {
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(PhraseProblem::UnbalancedBrace(category));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or(PhraseProblem::UnbalancedBrace(category))?;
        let name = &after[..close];
        if name.contains('{') {
            return Err(PhraseProblem::UnbalancedBrace(category));
        }
        if name != SERVICE_PLACEHOLDER {
            return Err(PhraseProblem::UnknownPlaceholder {
                category,
                name: name.to_string(),
            });
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Fill `{service}`, capitalising it where it starts a sentence.
pub(crate) fn render(template: &str, service_display: &str) -> String {
    let placeholder = "{service}";
    let mut out = String::with_capacity(template.len() + service_display.len());
    let mut rest = template;
    while let Some(at) = rest.find(placeholder) {
        out.push_str(&rest[..at]);
        let starts_sentence = out
            .trim_end()
            .chars()
            .last()
            .is_none_or(|c| matches!(c, '.' | '!' | '?'));
        let mut chars = service_display.chars();
        match chars.next() {
            Some(first) if starts_sentence => out.extend(first.to_uppercase().chain(chars)),
            _ => out.push_str(service_display),
        }
        rest = &rest[at + placeholder.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_book_is_valid() {
        let book = PhraseBook::from_str(EMBEDDED_TEXT, EMBEDDED_NAME).unwrap();
        for category in Category::ALL {
            assert!(book.variants(category).len() >= MIN_VARIANTS, "{category}");
        }
    }

    #[test]
    fn rendering_fills_the_service_and_capitalises_a_leading_placeholder() {
        assert_eq!(
            render("{service} is slow.", "the calendar"),
            "The calendar is slow."
        );
        assert_eq!(
            render("I'm checking {service}.", "the calendar"),
            "I'm checking the calendar."
        );
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
