//! Trust files: TOML read with errors that point at a line and column, and atomic replacement.

use std::fmt::Display;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A TOML file that is not what it should be, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {reason}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// What is wrong, for a person.
    pub reason: String,
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// An error located at byte range `span` of `text`.
pub(crate) fn error_at(
    path: &Path,
    text: &str,
    span: Range<usize>,
    reason: impl Display,
) -> FileError {
    let (line, column) = line_column(text, span.start);
    FileError {
        path: path.to_owned(),
        line,
        column,
        reason: reason.to_string(),
    }
}

/// Parses `text` (the contents of `path`) as `T`, mapping the parser's span to a line.
pub(crate) fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // The parser's message repeats the source excerpt; the first line is the reason.
        let reason = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned();
        error_at(path, text, span, reason)
    })
}

/// Replaces `path` with `bytes` atomically: a temporary file, fsync, rename, fsync the dir.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    crate::identity::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 3));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse::<toml::Table>(Path::new("x.toml"), "a = 1\nb = = 2\n").err();
        let err = err.map(|e| (e.line, e.to_string()));
        assert!(
            matches!(&err, Some((2, text)) if text.starts_with("x.toml:2:")),
            "{err:?}"
        );
    }
}
