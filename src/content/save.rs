//! Saving attachments: a sender's file name is untrusted, so it is reduced to one harmless
//! file name inside the save directory, and an existing file is never overwritten (`name (1).ext`
//! instead). The file appears under its name only once it was written whole and decrypted
//! without error; a marker remembers what was saved for which message, so reading the inbox
//! again does not save it twice.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::open::OpenError;

/// Directory, inside a save dir, of the markers naming what each message was saved as.
pub const MARKERS: &str = ".mule-saved";
/// Name used when nothing usable is left of the sender's.
pub const FALLBACK: &str = "attachment";
/// Longest saved file name, in bytes.
const MAX_NAME: usize = 200;
/// How many `name (n).ext` variants are tried.
const MAX_VARIANTS: u32 = 10_000;

/// Why an attachment could not be saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The content did not decrypt or is not a valid envelope; nothing was kept.
    #[error(transparent)]
    Content(#[from] OpenError),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Every variant of the name is taken.
    #[error("no free file name for {0} in the save dir")]
    NoFreeName(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SaveError + '_ {
    move |source| SaveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One safe file name from a sender's: its last path component (`/` and `\` both separate),
/// without control or reserved characters, without leading dots (no hidden files, no `..`),
/// at most 200 bytes with its extension kept; [`FALLBACK`] if nothing is left.
pub fn sanitize(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if trimmed.is_empty() {
        return FALLBACK.to_string();
    }
    shorten(trimmed, MAX_NAME)
}

/// `name` cut to at most `max` bytes on a character boundary, keeping a short extension.
fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if name.len() - i <= 16 && i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let mut end = max.saturating_sub(ext.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", &stem[..end])
}

/// `name`, then `stem (1).ext`, `stem (2).ext`...
fn variant(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} ({n}){}", &name[..i], &name[i..]),
        _ => format!("{name} ({n})"),
    }
}

/// Saves content for message `id` into `dir` under a sanitised `name`, unless it was saved
/// before (then returns where). `write` produces the bytes; if it fails, nothing is left.
pub fn save(
    dir: &Path,
    id: &str,
    name: &str,
    write: impl FnOnce(&mut dyn Write) -> Result<(), OpenError>,
) -> Result<PathBuf, SaveError> {
    let markers = dir.join(MARKERS);
    let marker = markers.join(id);
    if let Some(saved) = saved_before(&marker, dir) {
        return Ok(saved);
    }
    std::fs::create_dir_all(&markers).map_err(io_error(&markers))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".receiving-")
        .tempfile_in(dir)
        .map_err(io_error(dir))?;
    {
        let mut out = io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        write(&mut out)?;
        out.flush().map_err(io_error(dir))?;
    }
    tmp.as_file().sync_all().map_err(io_error(tmp.path()))?;
    let safe = sanitize(name);
    let mut tmp = Some(tmp);
    for n in 0..MAX_VARIANTS {
        let target = dir.join(variant(&safe, n));
        let Some(file) = tmp.take() else { break };
        match file.persist_noclobber(&target) {
            Ok(_) => {
                write_marker(&marker, &target)?;
                return Ok(target);
            }
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => tmp = Some(e.file),
            Err(e) => return Err(io_error(&target)(e.error)),
        }
    }
    Err(SaveError::NoFreeName(safe))
}

fn saved_before(marker: &Path, dir: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(marker).ok()?;
    // The marker holds a bare file name we wrote; anything else is ignored.
    let name = name.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    let path = dir.join(name);
    path.exists().then_some(path)
}

fn write_marker(marker: &Path, target: &Path) -> Result<(), SaveError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::write(marker, name).map_err(io_error(marker))
}
