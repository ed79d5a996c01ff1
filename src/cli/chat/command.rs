//! What a line typed into `mule chat` asks for: a message to send, or a slash command.
//! Pure: parsing only; the session carries the commands out.

use std::path::PathBuf;

/// A typed line, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Send this text to the chat.
    Say(String),
    /// Show the commands.
    Help,
    /// Show every earlier message of the chat.
    History,
    /// Send a file as an attachment.
    Share(PathBuf),
    /// Ping everyone in the chat; their pongs show the round trip.
    Ping,
    /// Peers, selection, queues and counters of the node.
    Debug,
    /// Empty the screen (the messages stay stored).
    Clear,
    /// Leave.
    Quit,
}

/// Why a typed line is not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// A slash command that does not exist.
    #[error("unknown command /{0}: /help lists the commands (start a message with // to send a leading /)")]
    Unknown(String),
    /// `/share` without a file.
    #[error("/share needs a file: /share PATH")]
    NoFile,
    /// A command that takes no argument got one.
    #[error("/{0} takes no argument")]
    Argument(&'static str),
}

/// The help text `/help` shows, one line per command.
pub const HELP: &[&str] = &[
    "type a message and press Enter to send it to the chat",
    "/share FILE   send a file (progress shows below the history)",
    "/ping         ping the chat: each node that reads it answers; the round trip shows with its hops",
    "/history      show every earlier message of this chat",
    "/debug        peers, selection, queues and counters of this node",
    "/clear        empty the screen (messages stay stored)",
    "/quit         leave (also Ctrl-C, Ctrl-D on an empty line)",
    "PgUp/PgDn scroll the history; // at the start sends a leading /",
    "each line: time sent, sender, hops (links it crossed), and how old it was when it arrived",
];

/// Parses one typed line; `None` for a blank line (nothing to do).
pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = trimmed.strip_prefix("//") {
        return Ok(Some(Command::Say(format!("/{rest}"))));
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Ok(Some(Command::Say(trimmed.to_string())));
    };
    let (name, arg) = match rest.split_once(char::is_whitespace) {
        Some((name, arg)) => (name, arg.trim()),
        None => (rest, ""),
    };
    let bare = |command: Command, name: &'static str| {
        if arg.is_empty() {
            Ok(Some(command))
        } else {
            Err(CommandError::Argument(name))
        }
    };
    match name {
        "help" | "h" | "?" => bare(Command::Help, "help"),
        "history" => bare(Command::History, "history"),
        "ping" => bare(Command::Ping, "ping"),
        "debug" => bare(Command::Debug, "debug"),
        "clear" => bare(Command::Clear, "clear"),
        "quit" | "exit" | "q" => bare(Command::Quit, "quit"),
        "share" if arg.is_empty() => Err(CommandError::NoFile),
        "share" => Ok(Some(Command::Share(expand_home(arg)))),
        other => Err(CommandError::Unknown(other.to_string())),
    }
}

/// `~/x` as the shell would expand it (the path is typed into the chat, not a shell).
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_and_commands() {
        assert_eq!(parse("   "), Ok(None));
        assert_eq!(
            parse(" hello there "),
            Ok(Some(Command::Say("hello there".into())))
        );
        assert_eq!(parse("//slash"), Ok(Some(Command::Say("/slash".into()))));
        assert_eq!(parse("/help"), Ok(Some(Command::Help)));
        assert_eq!(parse("/ping"), Ok(Some(Command::Ping)));
        assert_eq!(parse("/history"), Ok(Some(Command::History)));
        assert_eq!(parse("/debug"), Ok(Some(Command::Debug)));
        assert_eq!(parse("/clear"), Ok(Some(Command::Clear)));
        assert_eq!(parse("/quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            parse("/share  /tmp/a photo.jpg "),
            Ok(Some(Command::Share("/tmp/a photo.jpg".into())))
        );
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(parse("/share"), Err(CommandError::NoFile));
        assert_eq!(parse("/ping now"), Err(CommandError::Argument("ping")));
        let unknown = parse("/dance").unwrap_err();
        assert_eq!(unknown, CommandError::Unknown("dance".into()));
        assert!(unknown
            .to_string()
            .starts_with("unknown command /dance: /help"));
    }

    #[test]
    fn share_expands_home() {
        if let Some(home) = dirs::home_dir() {
            assert_eq!(
                parse("/share ~/notes.txt"),
                Ok(Some(Command::Share(home.join("notes.txt"))))
            );
        }
    }
}
