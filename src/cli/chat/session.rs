//! The node side of `mule chat`: carries out the commands the UI hands over (post, ping, share,
//! status, history) and tells the UI what arrives, as events on its bounded channel. Runs on
//! tokio; it never waits for the UI (a full channel is handed to a blocking thread).

use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

use super::app::Event;
use super::command::Command;
use super::scope::Scope;
use crate::content::envelope::Ping;
use crate::content::groups::Groups;
use crate::content::keys::Keyring;
use crate::control::views;
use crate::node::transfers::TransferView;
use crate::node::{Letter, Node, NodeEvent};
use crate::store::Stored;

/// Messages shown when the chat opens (`/history` shows all).
pub(super) const RECENT: usize = 20;
/// How often transfers and the peer count are looked at.
const POLL: Duration = Duration::from_millis(500);

/// The session: the node, where the chat's messages go, and the UI's channel.
pub(super) struct Session {
    pub(super) node: Node,
    pub(super) scope: Scope,
    pub(super) lifespan: Duration,
    pub(super) ui: SyncSender<Event>,
}

/// Hands `event` to the UI without blocking a tokio worker; false once the UI is gone.
fn tell(ui: &SyncSender<Event>, event: Event) -> bool {
    match ui.try_send(event) {
        Ok(()) => true,
        Err(TrySendError::Full(event)) => {
            let ui = ui.clone();
            drop(tokio::task::spawn_blocking(move || ui.send(event)));
            true
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

impl Session {
    fn tell(&self, event: Event) -> bool {
        tell(&self.ui, event)
    }

    /// Runs until the UI quits (its command channel closes) or SIGTERM.
    pub(super) async fn run(self, mut commands: mpsc::Receiver<Command>) -> anyhow::Result<()> {
        let mut events = self.node.subscribe();
        let mut keyring = self.keyring().await?;
        self.show_stored(&keyring, Some(RECENT)).await;
        let mut shares = JoinSet::new();
        let outcome = self
            .serve(&mut commands, &mut events, &mut keyring, &mut shares)
            .await;
        // Shares still sealing hold clones of the node; the node closes only without them.
        shares.abort_all();
        while shares.join_next().await.is_some() {}
        outcome
    }

    async fn serve(
        &self,
        commands: &mut mpsc::Receiver<Command>,
        events: &mut broadcast::Receiver<NodeEvent>,
        keyring: &mut Arc<Keyring>,
        shares: &mut JoinSet<()>,
    ) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(POLL);
        let mut shown: Vec<TransferView> = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = term.recv() => {
                    self.tell(Event::Quit);
                    return Ok(());
                }
                command = commands.recv() => match command {
                    None | Some(Command::Quit) => return Ok(()),
                    Some(Command::Share(path)) => self.share(path, shares),
                    Some(command) => self.carry_out(command, keyring).await,
                },
                event = events.recv() => match event {
                    Ok(NodeEvent::Stored { id, from: Some(_) }) => {
                        if let Ok(Some(stored)) = self.node.store().get(id).await {
                            self.show(keyring, &stored).await;
                        }
                    }
                    Ok(NodeEvent::Joined { group }) => {
                        *keyring = self.keyring().await?;
                        let hint = match &self.scope.privacy {
                            crate::node::Privacy::Group(g) if g.as_str() == group => String::new(),
                            _ => format!(": `mule chat --group {group}` talks in it"),
                        };
                        self.tell(Event::Info(format!("joined group {group} by invite{hint}")));
                    }
                    Ok(NodeEvent::Listening(addr)) => {
                        self.tell(Event::Info(format!("listening on {addr}")));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.tell(Event::Warn(format!(
                            "{n} node events missed while busy: /history shows every message"
                        )));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tick.tick() => {
                    while shares.try_join_next().is_some() {}
                    let now = self.node.transfers();
                    if now != shown {
                        shown = now.clone();
                        self.tell(Event::Transfers(now));
                    }
                    if let Ok(status) = self.node.status().await {
                        let n = status.connected_peers.len();
                        self.tell(Event::Status(format!(
                            "{n} peer{}",
                            if n == 1 { "" } else { "s" }
                        )));
                    }
                }
            }
        }
    }

    /// This node's key and its groups' keys, read on a blocking thread.
    async fn keyring(&self) -> anyhow::Result<Arc<Keyring>> {
        let identity = self.node.identity().clone();
        let dir = self.node.config().data_dir.clone();
        Ok(Arc::new(
            tokio::task::spawn_blocking(move || Keyring::new(&identity, Groups::at(&dir).usable()))
                .await??,
        ))
    }

    fn reader(&self) -> views::Reader<'_> {
        views::Reader {
            data_dir: &self.node.config().data_dir,
            identity: self.node.identity(),
            me: self.node.me(),
            roots: self.node.roots(),
            save_dir: None,
        }
    }

    /// Shows a stored message if it is addressed to this node.
    async fn show(&self, keyring: &Arc<Keyring>, stored: &Stored) {
        let now = crate::message::now_ms();
        if !crate::node::relay::addresses(&stored.header, self.node.me(), now) {
            return;
        }
        match views::read(self.node.store(), &self.reader(), keyring, stored).await {
            Ok(view) => {
                self.tell(Event::Arrived(Box::new(view)));
            }
            Err(e) => {
                self.tell(Event::Warn(format!(
                    "cannot read message {}: {e}",
                    stored.header.id.short()
                )));
            }
        }
    }

    /// Shows the stored messages addressed to this node (the last `recent`, or all).
    async fn show_stored(&self, keyring: &Arc<Keyring>, recent: Option<usize>) {
        let now = crate::message::now_ms();
        let all = match self.node.store().manifest(None, usize::MAX, now).await {
            Ok(all) => all,
            Err(e) => {
                self.tell(Event::Warn(format!("cannot read the store: {e}")));
                return;
            }
        };
        let me = self.node.me();
        let mine: Vec<&Stored> = all
            .iter()
            .filter(|s| crate::node::relay::addresses(&s.header, me, now))
            .collect();
        let skip = recent.map_or(0, |n| mine.len().saturating_sub(n));
        if skip > 0 {
            self.tell(Event::Info(format!(
                "{skip} earlier messages: /history shows them"
            )));
        }
        for stored in mine.into_iter().skip(skip) {
            self.show(keyring, stored).await;
        }
    }

    async fn carry_out(&self, command: Command, keyring: &Arc<Keyring>) {
        match command {
            Command::Say(text) => {
                let letter = Letter {
                    text: Some(text.clone()),
                    ..Letter::default()
                };
                match self.post(letter).await {
                    Ok(id) => self.tell(Event::Sent { id, text }),
                    Err(e) => self.tell(Event::Warn(format!("not sent: {e}"))),
                };
            }
            Command::Ping => {
                let at_ms = crate::message::now_ms();
                let letter = Letter {
                    text: Some("ping".into()),
                    ping: Some(Ping {}),
                    ..Letter::default()
                };
                match self.post(letter).await {
                    Ok(id) => self.tell(Event::Pinged { id, at_ms }),
                    Err(e) => self.tell(Event::Warn(format!("ping not sent: {e}"))),
                };
            }
            Command::Debug => self.debug().await,
            Command::History => self.show_stored(keyring, None).await,
            // Shares are spawned by the loop; the rest is handled by the UI itself.
            Command::Share(_) | Command::Help | Command::Clear | Command::Quit => {}
        }
    }

    async fn post(&self, letter: Letter) -> Result<String, crate::node::PostError> {
        self.scope.post(&self.node, letter, self.lifespan).await
    }

    /// Seals and stores a file on a task of its own (a large file takes a while); its push
    /// progress shows through the transfer bars.
    fn share(&self, path: PathBuf, shares: &mut JoinSet<()>) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        self.tell(Event::Info(format!(
            "sealing {name} ({})...",
            indicatif::HumanBytes(size)
        )));
        let (node, scope, lifespan, ui) = (
            self.node.clone(),
            self.scope.clone(),
            self.lifespan,
            self.ui.clone(),
        );
        shares.spawn(async move {
            let letter = Letter {
                file: Some(path),
                ..Letter::default()
            };
            let event = match scope.post(&node, letter, lifespan).await {
                Ok(id) => Event::Shared { id, name },
                Err(e) => Event::Warn(format!("{name} not shared: {e}")),
            };
            tell(&ui, event);
        });
    }

    async fn debug(&self) {
        let status = match self.node.status().await {
            Ok(status) => status,
            Err(e) => {
                self.tell(Event::Warn(format!("no status: {e}")));
                return;
            }
        };
        let short = |v: &[String]| {
            v.iter()
                .map(|p| super::app::short_peer(p))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let queues = status
            .queues
            .iter()
            .map(|(p, n)| format!("{}={n}", super::app::short_peer(p)))
            .collect::<Vec<_>>()
            .join(" ");
        let c = &status.counters;
        let lines = [
            format!("peer id {}", status.peer_id),
            format!("listening on {}", status.listen_addrs.join(" ")),
            format!(
                "connected {}: {}",
                status.connected_peers.len(),
                short(&status.connected_peers)
            ),
            format!(
                "selected {}: {} (known {})",
                status.selected_peers.len(),
                short(&status.selected_peers),
                status.known_peers
            ),
            format!(
                "queues: {}",
                if queues.is_empty() {
                    "none".into()
                } else {
                    queues
                }
            ),
            format!(
                "store: {} messages, {} of {}",
                status.messages,
                indicatif::HumanBytes(status.store_used),
                indicatif::HumanBytes(status.store_quota)
            ),
            format!(
                "counters: {}",
                serde_json::to_string(c).unwrap_or_else(|e| e.to_string())
            ),
            format!("transfers in flight: {}", status.transfers.len()),
        ];
        for line in lines {
            self.tell(Event::Info(line));
        }
    }
}
