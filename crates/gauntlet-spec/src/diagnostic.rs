//! Located errors for anything a user typed: file:line:col, the source line, what was
//! expected and what to do next. Rendered through miette at the edge.

use miette::{Diagnostic, NamedSource, SourceSpan};

/// One problem in a spec file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[source_code]
    source_code: NamedSource<String>,
    #[label("{label}")]
    span: Option<SourceSpan>,
    label: String,
    #[help]
    pub help: Option<String>,
}

impl SpecDiagnostic {
    /// A diagnostic at a 1-based line and column (in characters) of `source`.
    pub fn at(
        file: &str,
        source: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let message = message.into();
        // A line too long to show is not shown (the renderer cannot place a label past
        // column 65,535, and nobody reads a 1,000-character line): the place is still given.
        if line_length(source, line) > MAX_SHOWN_LINE {
            return Self {
                file: file.to_string(),
                line,
                column,
                label: String::new(),
                message,
                source_code: NamedSource::new(file, String::new()),
                span: None,
                help,
            };
        }
        let span = offset_of(source, line, column).map(|offset| {
            let rest = &source[offset..];
            let len = rest
                .find(['\n', ':', ','])
                .unwrap_or(rest.len())
                .clamp(1, 80)
                .min(rest.len().max(1));
            SourceSpan::from((offset, len.min(rest.len())))
        });
        Self {
            file: file.to_string(),
            line,
            column,
            label: short_label(&message),
            message,
            source_code: NamedSource::new(file, source.to_string()),
            span,
            help,
        }
    }

    /// A problem with the file as a whole (it cannot be read, it is empty).
    pub fn whole_file(file: &str, message: impl Into<String>, help: Option<String>) -> Self {
        Self {
            file: file.to_string(),
            line: 1,
            column: 1,
            label: String::new(),
            message: message.into(),
            source_code: NamedSource::new(file, String::new()),
            span: None,
            help,
        }
    }
}

fn short_label(message: &str) -> String {
    let first = message.split(':').next().unwrap_or(message);
    if first.len() > 60 {
        "here".into()
    } else {
        first.to_string()
    }
}

/// Lines longer than this (in bytes) are not quoted in a diagnostic.
const MAX_SHOWN_LINE: usize = 1000;

fn line_length(source: &str, line: usize) -> usize {
    source
        .split('\n')
        .nth(line.saturating_sub(1))
        .map_or(0, str::len)
}

/// Byte offset of a 1-based line and character column, if they lie inside `source`.
fn offset_of(source: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 {
        0
    } else {
        source
            .match_indices('\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    let line_text = source[line_start..].split('\n').next().unwrap_or("");
    let within = line_text
        .char_indices()
        .nth(column.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line_text.len());
    Some(line_start + within)
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_far_along_a_long_line_is_located_without_quoting_it() {
        let source = format!("a: 1\nb: \"{}\", c: 2\n", "x".repeat(70_000));
        let d = SpecDiagnostic::at("s.yaml", &source, 2, 70_010, "unknown field `c`", None);
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &d)
            .unwrap();
        assert!(out.contains("s.yaml:2:70010: unknown field `c`"), "{out}");
        assert!(out.len() < 1000, "the line is not quoted");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("servce", ["service", "targets"]),
            Some("service")
        );
        assert_eq!(
            did_you_mean("targest", ["service", "targets"]),
            Some("targets")
        );
        assert_eq!(did_you_mean("zzz", ["service", "targets"]), None);
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let src = "a: é\nbé: 2\n";
        assert_eq!(offset_of(src, 2, 1), Some(6));
        assert_eq!(offset_of(src, 2, 2), Some(7));
        assert_eq!(offset_of(src, 9, 1), None);
    }
}
