//! The chat's state: the history shown, the line being typed, pings awaiting pongs, transfers
//! in flight. Pure: keys and arrivals go in (time passed in), commands for the session come out;
//! [`super::render`] draws it.

use std::collections::{HashMap, HashSet, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::command::{self, Command, HELP};
use crate::control::views::{MessageView, Sealed};
use crate::node::transfers::TransferView;

/// Most history entries kept on screen (older ones stay stored; `/history` brings them back).
pub const MAX_ENTRIES: usize = 5_000;
/// Most pings remembered while their pongs are awaited.
pub const MAX_PINGS: usize = 256;

/// What kind of line an entry is, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A message from someone else.
    Message,
    /// A message this node sent.
    Mine,
    /// A pong answering one of our pings.
    Pong,
    /// Something the chat says (help, status, a ping seen).
    Info,
    /// Something went wrong, or a warning.
    Warning,
}

/// One line of history (wrapped when drawn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When the message was created (Unix ms); `None` for the chat's own notes.
    pub time_ms: Option<u64>,
    /// Who said it: a name, a short peer id, `me`; empty for notes.
    pub who: String,
    /// Links the message crossed (relays + 1), if it came from the network.
    pub hops: Option<usize>,
    /// How old it was when it arrived here.
    pub age_ms: Option<u64>,
    /// The text.
    pub text: String,
    /// Its kind.
    pub kind: Kind,
}

impl Entry {
    fn note(kind: Kind, text: impl Into<String>) -> Self {
        Self {
            time_ms: None,
            who: String::new(),
            hops: None,
            age_ms: None,
            text: text.into(),
            kind,
        }
    }
}

/// What reaches the chat's state: keys from the terminal, news from the session.
#[derive(Debug)]
pub enum Event {
    /// A key press.
    Key(KeyEvent),
    /// Text pasted into the terminal.
    Paste(String),
    /// The terminal changed size (just redraw).
    Resize,
    /// A message addressed to this node arrived (or `/history` brings it back).
    Arrived(Box<MessageView>),
    /// A message we typed was stored and is on its way.
    Sent {
        /// Its id.
        id: String,
        /// What was said.
        text: String,
    },
    /// A ping of ours left.
    Pinged {
        /// Its id.
        id: String,
        /// When (Unix ms).
        at_ms: u64,
    },
    /// A file we share is stored (sealed) and on its way.
    Shared {
        /// Its id.
        id: String,
        /// The file's name.
        name: String,
    },
    /// A note to show.
    Info(String),
    /// A warning to show.
    Warn(String),
    /// The node's short status (peers).
    Status(String),
    /// Transfers in flight now.
    Transfers(Vec<TransferView>),
    /// The session ends (SIGTERM): leave.
    Quit,
}

/// The chat's state.
#[derive(Debug)]
pub struct App {
    /// What the chat is (its scope), shown in the title bar.
    pub title: String,
    /// A short line about the node (peers), shown in the title bar.
    pub status: String,
    /// The line being typed.
    pub input: String,
    /// Lines scrolled up from the bottom of the history.
    pub scroll: usize,
    /// Transfers in flight (both ways), shown as progress bars.
    pub transfers: Vec<TransferView>,
    /// Names of transfers we started (`/share`), by message id.
    pub shares: HashMap<String, String>,
    /// Set once the person asked to leave.
    pub quit: bool,
    /// This node's peer id: its own messages (in the history) show as `me`.
    pub me: String,
    entries: VecDeque<Entry>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    pings: HashMap<String, u64>,
    ping_order: VecDeque<String>,
}

impl App {
    /// An empty chat titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            status: String::new(),
            input: String::new(),
            scroll: 0,
            transfers: Vec::new(),
            shares: HashMap::new(),
            quit: false,
            me: String::new(),
            entries: VecDeque::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            pings: HashMap::new(),
            ping_order: VecDeque::new(),
        }
    }

    /// Applies one event at `now_ms`; returns the command the session must carry out, if any.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Option<Command> {
        match event {
            Event::Key(key) => return self.key(key),
            Event::Paste(text) => self.input.push_str(&text.replace(['\r', '\n'], " ")),
            Event::Resize => {}
            Event::Arrived(view) => self.arrived(&view, now_ms),
            Event::Sent { id, text } => self.sent(&id, text, now_ms),
            Event::Pinged { id, at_ms } => self.pinged(&id, at_ms),
            Event::Shared { id, name } => {
                self.first_sight(&id);
                self.sent(&id, format!("[file {name}]"), now_ms);
                self.shares.insert(id, name);
            }
            Event::Info(text) => self.info(text),
            Event::Warn(text) => self.warn(text),
            Event::Status(status) => self.status = status,
            Event::Transfers(transfers) => self.transfers = transfers,
            Event::Quit => self.quit = true,
        }
        None
    }

    /// The history, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator {
        self.entries.iter()
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Adds a note.
    pub fn info(&mut self, text: impl Into<String>) {
        self.push(Entry::note(Kind::Info, text));
    }

    /// Adds a warning.
    pub fn warn(&mut self, text: impl Into<String>) {
        self.push(Entry::note(Kind::Warning, text));
    }

    /// Remembers a message id as shown; false if it already was.
    fn first_sight(&mut self, id: &str) -> bool {
        if !self.seen.insert(id.to_string()) {
            return false;
        }
        self.seen_order.push_back(id.to_string());
        if self.seen_order.len() > MAX_ENTRIES * 2 {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    /// A message this node sent (`text` as typed), stored with id `id` at `now_ms`.
    pub fn sent(&mut self, id: &str, text: String, now_ms: u64) {
        self.first_sight(id);
        self.push(Entry {
            time_ms: Some(now_ms),
            who: "me".into(),
            hops: None,
            age_ms: None,
            text,
            kind: Kind::Mine,
        });
    }

    /// A ping of ours left at `sent_ms`: its pongs will show the round trip.
    pub fn pinged(&mut self, id: &str, sent_ms: u64) {
        self.first_sight(id);
        if self.ping_order.len() >= MAX_PINGS {
            if let Some(old) = self.ping_order.pop_front() {
                self.pings.remove(&old);
            }
        }
        self.pings.insert(id.to_string(), sent_ms);
        self.ping_order.push_back(id.to_string());
        self.info(format!(
            "ping {} sent: every node that reads it answers",
            short_id(id)
        ));
    }

    /// A message addressed to this node, as the inbox reads it, seen at `now_ms`. Shown once
    /// per id; ciphertext for someone else is left out.
    pub fn arrived(&mut self, view: &MessageView, now_ms: u64) {
        if matches!(view.sealed, Some(Sealed::ForSomeoneElse) | None) || !self.first_sight(&view.id)
        {
            return;
        }
        let mine = !self.me.is_empty() && view.sender == self.me;
        let who = if mine { "me".to_string() } else { who(view) };
        let hops = (!mine).then_some(view.hops.len() + 1);
        let age_ms = (!mine).then_some(view.received_ms.saturating_sub(view.created_ms));
        let entry = |kind, text| Entry {
            time_ms: Some(view.created_ms),
            who: who.clone(),
            hops,
            age_ms,
            text,
            kind,
        };
        if let Some(Sealed::Unreadable(why)) = &view.sealed {
            self.warn(format!("unreadable message from {who}: {why}"));
            return;
        }
        if let Some(pong) = &view.pong {
            let text = match self.pings.get(&pong.ping) {
                Some(&sent) => format!(
                    "pong: {:.2} s round trip, {} out, {} back",
                    now_ms.saturating_sub(sent) as f64 / 1000.0,
                    hops_text(u64::from(pong.hops) + 1),
                    hops_text(view.hops.len() as u64 + 1)
                ),
                None => format!(
                    "pong for ping {} (not from this session)",
                    short_id(&pong.ping)
                ),
            };
            self.push(entry(Kind::Pong, text));
            return;
        }
        if view.ping {
            self.push(entry(Kind::Info, "pinged the chat".into()));
            return;
        }
        let mut text = view.text.clone().unwrap_or_default();
        if let Some(a) = &view.attachment {
            let saved = a
                .saved_to
                .as_deref()
                .map_or_else(|| "not saved".to_string(), |p| format!("saved to {p}"));
            if !text.is_empty() {
                text.push_str("  ");
            }
            text.push_str(&format!(
                "[file {} ({}), {saved}]",
                a.name,
                indicatif::HumanBytes(a.length)
            ));
        }
        if let Some(f) = &view.file {
            text.push_str(&format!("[content saved to {f}]"));
        }
        if let Some(note) = &view.note {
            text.push_str(&format!("  ({note})"));
        }
        self.push(entry(if mine { Kind::Mine } else { Kind::Message }, text));
    }

    /// A key press; returns the command the session must carry out, if any.
    pub fn key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return self.leave(),
            KeyCode::Char('d') if ctrl && self.input.is_empty() => return self.leave(),
            KeyCode::Char('u') if ctrl => self.input.clear(),
            KeyCode::Char(c) if !ctrl => self.input.push(c),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Esc => self.input.clear(),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Up => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Down => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Enter => return self.enter(),
            _ => {}
        }
        None
    }

    fn leave(&mut self) -> Option<Command> {
        self.quit = true;
        Some(Command::Quit)
    }

    fn enter(&mut self) -> Option<Command> {
        let line = std::mem::take(&mut self.input);
        self.scroll = 0;
        match command::parse(&line) {
            Ok(None) => None,
            Ok(Some(Command::Help)) => {
                for line in HELP {
                    self.info(*line);
                }
                None
            }
            Ok(Some(Command::Clear)) => {
                self.entries.clear();
                None
            }
            Ok(Some(Command::Quit)) => self.leave(),
            Ok(Some(Command::History)) => {
                // The session sends every message again; show them once each, in order.
                self.entries.clear();
                self.seen.clear();
                self.seen_order.clear();
                Some(Command::History)
            }
            Ok(Some(command)) => Some(command),
            Err(e) => {
                self.warn(e.to_string());
                None
            }
        }
    }
}

/// `1 hop`, `3 hops`.
pub fn hops_text(n: u64) -> String {
    if n == 1 {
        "1 hop".into()
    } else {
        format!("{n} hops")
    }
}

/// The sender as the chat names it: its first proved name, else the end of its peer id.
pub fn who(view: &MessageView) -> String {
    match view.sender_names.first() {
        Some(name) => name.clone(),
        None => short_peer(&view.sender),
    }
}

/// The last 6 characters of a peer id (the start, `12D3KooW`, is the same for every ed25519
/// key), marked as shortened.
pub fn short_peer(peer: &str) -> String {
    let skip = peer.chars().count().saturating_sub(6);
    format!("…{}", peer.chars().skip(skip).collect::<String>())
}

/// The start of a message id.
pub fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::envelope::Pong;

    fn view(id: &str, text: &str, hops: usize) -> MessageView {
        MessageView {
            id: id.into(),
            sender: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo".into(),
            sender_names: Vec::new(),
            recipient: "*".into(),
            created_ms: 1_000_000,
            received_ms: 1_003_000,
            expires_ms: 2_000_000,
            length: 10,
            hops: vec!["relay".into(); hops],
            text: Some(text.into()),
            file: None,
            sealed: Some(Sealed::Open),
            attachment: None,
            note: None,
            ping: false,
            pong: None,
        }
    }

    fn key(app: &mut App, code: KeyCode) -> Option<Command> {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(app: &mut App, text: &str) -> Option<Command> {
        for c in text.chars() {
            key(app, KeyCode::Char(c));
        }
        key(app, KeyCode::Enter)
    }

    #[test]
    fn an_arrival_shows_once_with_sender_hops_and_age() {
        let mut app = App::new("group campfire");
        let v = view("aa", "hello", 1);
        app.arrived(&v, 1_004_000);
        app.arrived(&v, 1_005_000);
        let entries: Vec<_> = app.entries().collect();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].who, "…CVe2Xo");
        assert_eq!(entries[0].hops, Some(2));
        assert_eq!(entries[0].age_ms, Some(3_000));
        assert_eq!(entries[0].text, "hello");
        assert_eq!(entries[0].kind, Kind::Message);
    }

    #[test]
    fn names_win_over_peer_ids_and_others_ciphertext_is_left_out() {
        let mut app = App::new("x");
        let mut named = view("aa", "hi", 0);
        named.sender_names = vec!["campfire/bob".into()];
        app.arrived(&named, 0);
        let mut other = view("bb", "", 0);
        other.sealed = Some(Sealed::ForSomeoneElse);
        app.arrived(&other, 0);
        let mut broken = view("cc", "", 0);
        broken.sealed = Some(Sealed::Unreadable("damaged".into()));
        app.arrived(&broken, 0);
        let entries: Vec<_> = app.entries().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].who, "campfire/bob");
        assert_eq!(entries[1].kind, Kind::Warning);
        assert!(entries[1].text.contains("damaged"));
    }

    #[test]
    fn a_pong_for_our_ping_shows_the_round_trip_and_both_legs() {
        let mut app = App::new("x");
        let ping = "ab".repeat(32);
        app.pinged(&ping, 10_000);
        let mut pong = view("cd", "pong", 1);
        pong.pong = Some(Pong {
            ping: ping.clone(),
            hops: 2,
        });
        app.arrived(&pong, 11_250);
        let last = app.entries().last().cloned().unwrap();
        assert_eq!(last.kind, Kind::Pong);
        assert_eq!(
            last.text,
            "pong: 1.25 s round trip, 3 hops out, 2 hops back"
        );
        // A pong for a ping this session did not send says so.
        let mut stray = view("ef", "pong", 0);
        stray.pong = Some(Pong {
            ping: "12".repeat(32),
            hops: 0,
        });
        app.arrived(&stray, 11_300);
        assert!(app
            .entries()
            .last()
            .unwrap()
            .text
            .contains("not from this session"));
    }

    #[test]
    fn typing_commands_and_mistakes() {
        let mut app = App::new("x");
        assert_eq!(typed(&mut app, "hello"), Some(Command::Say("hello".into())));
        assert!(app.input.is_empty());
        assert_eq!(typed(&mut app, "/ping"), Some(Command::Ping));
        assert_eq!(typed(&mut app, "/help"), None);
        assert_eq!(app.entries().len(), HELP.len());
        assert_eq!(typed(&mut app, "/nope"), None);
        assert_eq!(app.entries().last().unwrap().kind, Kind::Warning);
        assert_eq!(typed(&mut app, "/clear"), None);
        assert_eq!(app.entries().len(), 0);
        key(&mut app, KeyCode::Char('x'));
        key(&mut app, KeyCode::Backspace);
        assert!(app.input.is_empty());
        key(&mut app, KeyCode::PageUp);
        assert_eq!(app.scroll, 10);
        assert_eq!(typed(&mut app, "/quit"), Some(Command::Quit));
        assert!(app.quit);
    }

    #[test]
    fn ctrl_c_leaves() {
        let mut app = App::new("x");
        let cmd = app.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(cmd, Some(Command::Quit));
        assert!(app.quit);
    }

    #[test]
    fn history_is_bounded() {
        let mut app = App::new("x");
        for i in 0..MAX_ENTRIES + 10 {
            app.info(format!("{i}"));
        }
        assert_eq!(app.entries().len(), MAX_ENTRIES);
        assert_eq!(app.entries().next().unwrap().text, "10");
    }
}
