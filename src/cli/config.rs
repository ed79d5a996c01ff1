//! Node settings from a TOML file, under the environment and the flags.
//!
//! `<data-dir>/config.toml` (or `--config FILE`) holds any `mule node` flag under its long name
//! (`max-active-peers = 4`, `listen = ["/ip4/0.0.0.0/tcp/4001"]`, `no-mdns = true`). Precedence,
//! lowest first: built-in default, file, `MULE_*` environment variable, flag. The file is applied
//! by handing clap the file's settings as flags in front of the real ones, only for settings the
//! environment and the flags left at their default, so clap parses and checks every value the
//! same way whatever its source. `mule config show` prints the result and where each came from.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;

/// The config file's name inside the data dir.
pub const FILE: &str = "config.toml";

/// Options of `mule config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// `mule config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// The effective `mule node` settings and where each came from (flag, env, file, default).
    /// Takes the same flags as `mule node`.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The node's settings, as `mule node` would take them.
        #[command(flatten)]
        node: super::node::Args,
    },
}

/// Where a setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// A `MULE_*` environment variable.
    Env,
    /// The config file.
    File,
    /// The built-in default.
    Default,
}

/// Parses the command line, with the config file applied to `mule node`, `chat`, `robot` and
/// `mule config show`.
pub fn parse(raw: Vec<OsString>) -> Result<super::Parsed, clap::Error> {
    let matches = Cli::command().try_get_matches_from(&raw)?;
    let done =
        |matches: ArgMatches, from_file: Vec<String>| -> Result<super::Parsed, clap::Error> {
            Ok(super::Parsed {
                cli: Cli::from_arg_matches(&matches)?,
                from_file,
                matches,
            })
        };
    let Some((path, node)) = node_matches(&matches) else {
        return done(matches, Vec::new());
    };
    let file = match config_file(&matches) {
        Ok(file) => file,
        Err(e) => return Err(Cli::command().error(clap::error::ErrorKind::Io, format!("{e:#}"))),
    };
    let Some(table) = file else {
        return done(matches.clone(), Vec::new());
    };
    let known = setting_ids(&path);
    let (flags, used) = match file_flags(&table, node, &known) {
        Ok(x) => x,
        Err(e) => {
            return Err(Cli::command().error(clap::error::ErrorKind::InvalidValue, format!("{e:#}")))
        }
    };
    let at = subcommand_end(&raw, &path);
    let mut merged = raw[..at].to_vec();
    merged.extend(flags);
    merged.extend_from_slice(&raw[at..]);
    let merged = Cli::command().try_get_matches_from(&merged)?;
    done(merged, used)
}

/// The subcommand path and matches of the node settings, if the command takes them.
fn node_matches(matches: &ArgMatches) -> Option<(Vec<&'static str>, &ArgMatches)> {
    match matches.subcommand()? {
        ("node", m) => Some((vec!["node"], m)),
        ("chat", m) => Some((vec!["chat"], m)),
        ("robot", m) => Some((vec!["robot"], m)),
        ("config", m) => match m.subcommand()? {
            ("show", s) => Some((vec!["config", "show"], s)),
            _ => None,
        },
        _ => None,
    }
}

/// The ids of the settings a subcommand takes (the `mule node` flags), from its definition.
pub fn setting_ids(path: &[&str]) -> Vec<String> {
    let mut cmd = Cli::command();
    for name in path {
        match cmd.find_subcommand(name) {
            Some(sub) => cmd = sub.clone(),
            None => return Vec::new(),
        }
    }
    cmd.get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .filter(|id| {
            !matches!(
                id.as_str(),
                "json"
                    | "config"
                    | "data_dir"
                    | "log_format"
                    | "help"
                    | "quiet"
                    | "to"
                    | "group"
                    | "lifespan"
                    | "interval"
                    | "text"
            )
        })
        .collect()
}

/// Where the subcommand's own arguments start in `raw` (after its last name).
fn subcommand_end(raw: &[OsString], path: &[&str]) -> usize {
    let mut at = 1;
    for name in path {
        match raw[at..].iter().position(|a| a == name) {
            Some(i) => at += i + 1,
            None => return raw.len(),
        }
    }
    at
}

/// The config file's table: `--config FILE` (must exist), else `<data-dir>/config.toml` if it
/// exists.
fn config_file(matches: &ArgMatches) -> anyhow::Result<Option<toml::Table>> {
    let explicit = matches.get_one::<PathBuf>("config").cloned();
    let path = match explicit {
        Some(p) => p,
        None => {
            let dir = crate::identity::data_dir(matches.get_one::<PathBuf>("data_dir").cloned())?;
            let p = dir.join(FILE);
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    read_table(&path).map(Some)
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("config file {} is not valid TOML", path.display()))
}

/// Flags for the file's settings that the environment and the command line left at their
/// default; and the names of those settings.
fn file_flags(
    table: &toml::Table,
    node: &ArgMatches,
    known: &[String],
) -> anyhow::Result<(Vec<OsString>, Vec<String>)> {
    let mut flags = Vec::new();
    let mut used = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        anyhow::ensure!(
            known.contains(&id),
            "unknown setting `{key}` in the config file (use the long name of a `mule node` flag)"
        );
        if matches!(
            node.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{key}");
        match value {
            toml::Value::Boolean(true) => flags.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    flags.push(flag.clone().into());
                    flags.push(scalar(key, item)?.into());
                }
            }
            other => {
                flags.push(flag.into());
                flags.push(scalar(key, other)?.into());
            }
        }
        used.push(key.clone());
    }
    Ok((flags, used))
}

fn scalar(key: &str, value: &toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => anyhow::bail!("setting `{key}` has a value of the wrong kind: {other}"),
    })
}

/// `mule config show`: each node setting, its effective value and its source.
pub fn show(node: &ArgMatches, from_file: &[String], json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for id in setting_ids(&["config", "show"]) {
        let name = id.as_str();
        let key = name.replace('_', "-");
        let source = if from_file.contains(&key) {
            Source::File
        } else {
            match node.value_source(name) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env,
                _ => Source::Default,
            }
        };
        let values: Vec<String> = node
            .try_get_raw(name)
            .ok()
            .flatten()
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        rows.push((key, values, source));
    }
    if json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .into_iter()
            .map(|(k, v, s)| (k, serde_json::json!({ "value": v, "source": s })))
            .collect();
        super::out!("{}", serde_json::to_string_pretty(&map)?);
    } else {
        for (key, values, source) in rows {
            let value = if values.is_empty() {
                "(unset)".to_owned()
            } else {
                values.join(", ")
            };
            let source = format!("{source:?}").to_lowercase();
            super::out!("{key:<20} {value:<40} {source}");
        }
    }
    Ok(())
}
