//! Maps dotted field paths to lines of the TOML text and back, so semantic
//! errors found after deserializing can still say "line 42".

use std::ops::Range;

use toml::de::{DeTable, DeValue};

struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// Where every key of a TOML document sits.
pub(crate) struct SpanIndex {
    line_starts: Vec<usize>,
    entries: Vec<Entry>,
}

impl SpanIndex {
    pub(crate) fn parse(text: &str) -> Result<SpanIndex, toml::de::Error> {
        let table = DeTable::parse(text)?;
        let mut entries = Vec::new();
        collect(table.get_ref(), "", &mut entries);
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ok(SpanIndex {
            line_starts,
            entries,
        })
    }

    /// 1-based line holding byte `offset`.
    pub(crate) fn line_at(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
    }

    /// Line where `path` is written, or where its nearest written ancestor is
    /// (a defaulted field points at its table's header).
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        let mut candidate = path;
        loop {
            if let Some(entry) = self.entries.iter().find(|e| e.path == candidate) {
                return Some(self.line_at(entry.key.start));
            }
            candidate = &candidate[..candidate.rfind('.')?];
        }
    }

    /// The deepest field whose key or value contains `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.key.contains(&offset) || e.value.contains(&offset))
            .max_by_key(|e| e.path.matches('.').count())
            .map(|e| e.path.as_str())
    }
}

/// 1-based line holding byte `offset` of `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn collect(table: &DeTable<'_>, prefix: &str, entries: &mut Vec<Entry>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if let DeValue::Table(inner) = value.get_ref() {
            collect(inner, &path, entries);
        }
        entries.push(Entry {
            path,
            key: key.span(),
            value: value.span(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[profiles.voice]\nbudget = \"3s\"\nbackoff = { cap = \"1s\" }\n";

    #[test]
    fn finds_the_line_of_a_field_and_of_a_defaulted_fields_table() {
        let index = SpanIndex::parse(TEXT).unwrap();
        assert_eq!(index.line_of("profiles.voice.budget"), Some(2));
        assert_eq!(index.line_of("profiles.voice.backoff.cap"), Some(3));
        assert_eq!(index.line_of("profiles.voice.filler_after"), Some(1));
        assert_eq!(index.line_of("services.hubspot"), None);
    }

    #[test]
    fn finds_the_field_at_an_offset() {
        let index = SpanIndex::parse(TEXT).unwrap();
        let offset = TEXT.find("\"1s\"").unwrap();
        assert_eq!(index.path_at(offset), Some("profiles.voice.backoff.cap"));
    }
}
