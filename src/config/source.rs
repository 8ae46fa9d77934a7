//! Source files, byte spans into them, and diagnostics rendered against them.

use std::fmt::Write as _;

/// Identifies one file added to a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(u32);

/// A byte range `start..end` in one file.
///
/// Offsets are `u32` to keep AST nodes small; files beyond 4 GiB are not
/// configuration files, and offsets past that saturate instead of wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span {
            file,
            start: saturating_u32(start),
            end: saturating_u32(end.max(start)),
        }
    }

    /// The smallest span covering both `self` and `other` (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

pub(crate) fn saturating_u32(offset: usize) -> u32 {
    u32::try_from(offset).unwrap_or(u32::MAX)
}

/// An error found in a configuration file, located by its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

struct SourceFile {
    name: String,
    text: String,
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// 0-based line index containing `offset`.
    fn line_index(&self, offset: u32) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    /// The text of a 0-based line, without its line ending.
    fn line_text(&self, index: usize) -> &str {
        let start = self.line_starts.get(index).copied().unwrap_or(0) as usize;
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&next| next as usize);
        let line = self.text.get(start..end).unwrap_or("");
        line.trim_end_matches('\n').trim_end_matches('\r')
    }

    /// Clamps `offset` into the text and back onto a character boundary, so
    /// that a span from another file version never makes us slice mid-char.
    fn clamp(&self, offset: u32) -> usize {
        let mut offset = (offset as usize).min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

/// Every configuration file read so far, so that spans can be turned back
/// into `file:line:col` and source excerpts.
#[derive(Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, byte)| byte == b'\n')
                    .map(|(index, _)| saturating_u32(index + 1)),
            )
            .collect();
        let id = FileId(saturating_u32(self.files.len()));
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
        });
        id
    }

    /// Every file added so far, in the order added.
    pub fn file_ids(&self) -> impl Iterator<Item = FileId> + use<> {
        (0..saturating_u32(self.files.len())).map(FileId)
    }

    /// The file's name as given to [`SourceMap::add`]; empty for an unknown id.
    pub fn name(&self, file: FileId) -> &str {
        self.file(file).map_or("", |f| f.name.as_str())
    }

    /// The file's full text; empty for an unknown id.
    pub fn text(&self, file: FileId) -> &str {
        self.file(file).map_or("", |f| f.text.as_str())
    }

    fn file(&self, file: FileId) -> Option<&SourceFile> {
        self.files.get(file.0 as usize)
    }

    /// File name, 1-based line and 1-based column (in characters) of the
    /// start of `span`.
    pub fn line_col(&self, span: Span) -> (String, usize, usize) {
        let Some(file) = self.file(span.file) else {
            return ("<unknown>".to_string(), 0, 0);
        };
        let start = file.clamp(span.start);
        let line = file.line_index(saturating_u32(start));
        let line_start = file.line_starts[line] as usize;
        let col = file.text[line_start..start].chars().count() + 1;
        (file.name.clone(), line + 1, col)
    }

    /// 1-based line of a byte offset, for callers that only compare lines.
    pub(crate) fn line_of(&self, file: FileId, offset: u32) -> usize {
        self.file(file).map_or(0, |f| f.line_index(offset) + 1)
    }

    /// Renders `file:line:col: message`, the offending source line, a caret
    /// line under the span (on its first line only) and an optional help line.
    pub fn render(&self, diagnostic: &Diagnostic) -> String {
        let (name, line, col) = self.line_col(diagnostic.span);
        let mut out = format!("{name}:{line}:{col}: {}", diagnostic.message);
        if let Some(file) = self.file(diagnostic.span.file) {
            let text = file.line_text(line - 1);
            let _ = write!(out, "\n{text}\n{}", caret_line(file, diagnostic.span, text));
        }
        if let Some(help) = &diagnostic.help {
            let _ = write!(out, "\nhelp: {help}");
        }
        out
    }
}

/// Blank prefix up to the span's column, then one `^` per spanned character.
/// Tabs in the prefix are kept as tabs so the carets line up in a terminal.
fn caret_line(file: &SourceFile, span: Span, line_text: &str) -> String {
    let start = file.clamp(span.start);
    let end = file.clamp(span.end).max(start);
    let line_start = file.line_starts[file.line_index(saturating_u32(start))] as usize;
    let prefix_len = start - line_start;
    let mut caret: String = line_text
        .get(..prefix_len)
        .unwrap_or(line_text)
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let spanned_on_line = line_text
        .get(prefix_len.min(line_text.len())..)
        .unwrap_or("")
        .char_indices()
        .take_while(|&(index, _)| line_start + prefix_len + index < end)
        .count();
    caret.extend(std::iter::repeat_n('^', spanned_on_line.max(1)));
    caret
}

/// A "did you mean" help for a misspelt `name`: the closest candidate
/// within a typo's distance (ignoring case), if any.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let name = name.to_lowercase();
    candidates
        .into_iter()
        .map(|candidate| {
            (
                strsim::damerau_levenshtein(&name, &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|&(distance, candidate)| distance <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| format!("did you mean {candidate:?}?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_with(text: &str) -> (SourceMap, FileId) {
        let mut map = SourceMap::new();
        let file = map.add("test.alloy", text);
        (map, file)
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let (map, file) = map_with("ab\nµx = 1\n");
        assert_eq!(
            map.line_col(Span::new(file, 0, 1)),
            ("test.alloy".into(), 1, 1)
        );
        // 'x' follows the two-byte 'µ': byte 5, character column 2.
        assert_eq!(
            map.line_col(Span::new(file, 5, 6)),
            ("test.alloy".into(), 2, 2)
        );
    }

    #[test]
    fn render_underlines_the_span_and_adds_help() {
        let (map, file) = map_with("a {\n  urll = 1\n}\n");
        let diagnostic = Diagnostic::new(Span::new(file, 6, 10), "unknown attribute \"urll\"")
            .with_help("did you mean \"url\"?");
        assert_eq!(
            map.render(&diagnostic),
            "test.alloy:2:3: unknown attribute \"urll\"\n  urll = 1\n  ^^^^\nhelp: did you mean \"url\"?"
        );
    }

    #[test]
    fn render_keeps_tabs_and_marks_empty_spans_with_one_caret() {
        let (map, file) = map_with("\tx = \n");
        let diagnostic = Diagnostic::new(Span::new(file, 5, 5), "expected expression");
        assert_eq!(
            map.render(&diagnostic),
            "test.alloy:1:6: expected expression\n\tx = \n\t    ^"
        );
    }

    #[test]
    fn render_stops_carets_at_the_end_of_the_first_line() {
        let (map, file) = map_with("x = [\n1]\n");
        let diagnostic = Diagnostic::new(Span::new(file, 4, 8), "bad list");
        assert_eq!(
            map.render(&diagnostic),
            "test.alloy:1:5: bad list\nx = [\n    ^"
        );
    }

    #[test]
    fn did_you_mean_suggests_only_close_names() {
        let names = ["url", "listen_port", "headers", "endpoint"];
        assert_eq!(
            did_you_mean("urll", names).as_deref(),
            Some("did you mean \"url\"?")
        );
        assert_eq!(
            did_you_mean("listen_prot", names).as_deref(),
            Some("did you mean \"listen_port\"?")
        );
        assert_eq!(
            did_you_mean("URL", names).as_deref(),
            Some("did you mean \"url\"?")
        );
        assert_eq!(
            did_you_mean("endpoints", names).as_deref(),
            Some("did you mean \"endpoint\"?")
        );
        assert_eq!(did_you_mean("zzz", names), None);
        assert_eq!(did_you_mean("x", []), None);
    }

    #[test]
    fn spans_outside_the_text_do_not_panic() {
        let (map, file) = map_with("é");
        let diagnostic = Diagnostic::new(Span::new(file, 1, 99), "odd");
        assert!(map.render(&diagnostic).starts_with("test.alloy:1:1: odd"));
        let unknown = Span::new(FileId(7), 0, 0);
        assert_eq!(map.line_col(unknown), ("<unknown>".into(), 0, 0));
        assert_eq!(
            map.render(&Diagnostic::new(unknown, "x")),
            "<unknown>:0:0: x"
        );
    }
}
