//! Group keys: an age X25519 identity shared by a group's members, one file per group in
//! `<data-dir>/groups/NAME.key`, in age's own identity-file format (comments, then the key), so
//! `age -d -i` reads them too.
//!
//! A key arrives by `mule group new` or by an invite; an invite never replaces a key the node
//! already holds under that name (whoever sends a "campfire" invite first must not capture
//! later "campfire" messages), it is reported as a conflict instead.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519;

use super::keys::{age_identity_from_str, KeyError};

/// Directory of group keys inside the data dir.
pub const GROUPS_DIR: &str = "groups";
/// Largest group key file read.
const MAX_FILE: u64 = 16 * 1024;
/// Longest group name.
const MAX_NAME: usize = 64;

/// A group's local name: lower-case letters, digits, `-`, `_` and `.`, starting with a letter
/// or digit, at most 64 bytes (it is a file name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupName(String);

/// Why a group name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("group name {name:?} is invalid: use 1 to {MAX_NAME} lower-case letters, digits, '-', '_' or '.', starting with a letter or digit")]
pub struct GroupNameError {
    name: String,
}

impl FromStr for GroupName {
    type Err = GroupNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if first_ok && s.len() <= MAX_NAME && s.chars().all(ok_char) {
            Ok(Self(s.to_string()))
        } else {
            Err(GroupNameError {
                name: s.chars().take(80).collect(),
            })
        }
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl GroupName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group this node holds the key of.
#[derive(Clone)]
pub struct Group {
    /// Its name.
    pub name: GroupName,
    /// Its shared age identity.
    pub identity: x25519::Identity,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Group({}: {})", self.name, self.identity.to_public())
    }
}

impl Group {
    /// The age recipient members encrypt to.
    pub fn recipient(&self) -> x25519::Recipient {
        self.identity.to_public()
    }

    /// The key as an invite carries it.
    pub fn secret_text(&self) -> String {
        self.identity.to_string().expose_secret().to_string()
    }
}

/// Why a group key could not be read, created or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// An invalid name.
    #[error(transparent)]
    Name(#[from] GroupNameError),
    /// No key under that name.
    #[error("no group {0}: create it with `mule group new {0}` or ask a member for an invite")]
    Unknown(GroupName),
    /// `group new` for a name already held.
    #[error("group {0} already exists ({1})")]
    Exists(GroupName, PathBuf),
    /// A key file that is not one age identity.
    #[error("group key file {path}: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key text does not parse.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GroupError + '_ {
    move |source| GroupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What installing an invited key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The key is new here and now usable.
    New,
    /// This very key was already held.
    AlreadyHeld,
    /// Another key is held under that name; it was kept.
    Conflict,
}

/// The group keys of one data dir.
#[derive(Debug, Clone)]
pub struct Groups {
    dir: PathBuf,
}

impl Groups {
    /// The groups of `data_dir`.
    pub fn at(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(GROUPS_DIR),
        }
    }

    fn path(&self, name: &GroupName) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// Every group held, by name. A damaged file is an error: it names the file to fix.
    pub fn list(&self) -> Result<Vec<Group>, GroupError> {
        self.list_each()?.into_iter().collect()
    }

    /// Every group file, each read on its own.
    fn list_each(&self) -> Result<Vec<Result<Group, GroupError>>, GroupError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir)(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_error(&self.dir))?.path();
            let Some(stem) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
            else {
                continue;
            };
            if let Ok(name) = stem.parse::<GroupName>() {
                files.push((name, path));
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(files
            .into_iter()
            .map(|(name, path)| read_key(&path).map(|identity| Group { identity, name }))
            .collect())
    }

    /// Every group whose key reads; a damaged key file is logged and skipped, so one bad file
    /// does not stop the others from opening messages (`mule group list` names it).
    pub fn usable(&self) -> Vec<Group> {
        match self.list_each() {
            Ok(all) => all
                .into_iter()
                .filter_map(|g| g.map_err(|e| tracing::warn!("group key skipped: {e}")).ok())
                .collect(),
            Err(e) => {
                tracing::warn!("group keys unreadable: {e}");
                Vec::new()
            }
        }
    }

    /// The group called `name`.
    pub fn get(&self, name: &GroupName) -> Result<Group, GroupError> {
        let path = self.path(name);
        if !path.exists() {
            return Err(GroupError::Unknown(name.clone()));
        }
        Ok(Group {
            name: name.clone(),
            identity: read_key(&path)?,
        })
    }

    /// Creates a new group with a fresh key.
    pub fn create(&self, name: &GroupName) -> Result<Group, GroupError> {
        let group = Group {
            name: name.clone(),
            identity: x25519::Identity::generate(),
        };
        let note = format!("created {}", now_text());
        if !self.write_new(&group, &note)? {
            return Err(GroupError::Exists(name.clone(), self.path(name)));
        }
        Ok(group)
    }

    /// Installs a key received in an invite from `from`, unless another key holds the name.
    pub fn install(&self, group: &Group, from: &str) -> Result<Installed, GroupError> {
        match self.get(&group.name) {
            Ok(held) if held.recipient().to_string() == group.recipient().to_string() => {
                return Ok(Installed::AlreadyHeld)
            }
            Ok(_) => return Ok(Installed::Conflict),
            Err(GroupError::Unknown(_)) => {}
            // A damaged key file under that name: say so rather than write beside it.
            Err(e) => return Err(e),
        }
        let note = format!("invited by {from}, {}", now_text());
        if self.write_new(group, &note)? {
            return Ok(Installed::New);
        }
        // Someone installed one between our check and our write: judge again.
        self.install(group, from)
    }

    /// Writes `group`'s key file atomically, mode 0600; `false` if the name is taken.
    fn write_new(&self, group: &Group, note: &str) -> Result<bool, GroupError> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let path = self.path(&group.name);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io_error(&self.dir))?;
        let text = format!(
            "# mule group: {}\n# {note}\n# public key: {}\n{}\n",
            group.name,
            group.recipient(),
            group.secret_text()
        );
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(tmp.path()))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(io_error(&path))?;
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_error(&path)(e.error)),
        }
    }
}

fn now_text() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Reads one age identity from an identity file (comments and blank lines allowed).
fn read_key(path: &Path) -> Result<x25519::Identity, GroupError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(io_error(path))?;
    let damaged = |reason: &str| GroupError::Damaged {
        path: path.to_owned(),
        reason: reason.to_string(),
    };
    if text.len() as u64 > MAX_FILE {
        return Err(damaged("larger than a key file can be"));
    }
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err(damaged("must hold exactly one AGE-SECRET-KEY-1... line"));
    };
    age_identity_from_str(key).map_err(|e| damaged(&e.to_string()))
}
