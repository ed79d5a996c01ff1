//! `mule robot`: a headless node for demos and soak tests. It answers pings (as every CLI node
//! does) and, told `!talk` by a message it can read, says something to its chat every
//! `--interval` until told `!hush`. Each change is acknowledged in the chat and printed.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::broadcast;

use super::chat::scope::Scope;
use crate::content::groups::Groups;
use crate::content::keys::Keyring;
use crate::control::views;
use crate::node::{Letter, Node, NodeEvent};

/// Options of `mule robot`.
#[derive(Debug, clap::Args)]
// Flattened beside `mule node`'s own `Args`: no group named after the struct.
#[group(skip)]
pub struct Args {
    /// Who the robot talks to (as `mule chat`).
    #[command(flatten)]
    scope: super::chat::scope::Args,
    /// How often to speak while talking.
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    interval: Duration,
    /// What to say (a counter is added).
    #[arg(long, default_value = "beep")]
    text: String,
    /// How long each message is worth carrying.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    lifespan: Duration,
    /// The node's settings, as `mule node` takes them.
    #[command(flatten)]
    node: super::node::Args,
}

/// Shortest interval: a robot is for demos and soak tests, not for flooding.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    if d < MIN_INTERVAL {
        return Err(format!("`{text}` is shorter than the minimum of 100ms"));
    }
    Ok(d)
}

/// What a message tells the robot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    /// Start talking.
    Talk,
    /// Stop talking.
    Hush,
}

impl Order {
    /// The order in a message's text, if it is one (`!talk`, `!hush`, alone on the line).
    pub(super) fn of(text: &str) -> Option<Self> {
        match text.trim() {
            "!talk" => Some(Self::Talk),
            "!hush" => Some(Self::Hush),
            _ => None,
        }
    }
}

pub(super) async fn run(data_dir: PathBuf, args: Args) -> anyhow::Result<()> {
    super::chat::refuse_if_running(&data_dir, "robot").await?;
    let scope = super::chat::scope_of(&data_dir, args.scope).await?;
    let running = super::node::Running::start(&data_dir, args.node).await?;
    // Subscribed before printing: addresses bound after the print arrive as events.
    let events = running.node.subscribe();
    if let Some(warning) = scope.warning() {
        eprintln!("note: {warning}");
    }
    super::out!("robot talking to {}", scope.label());
    running.print_addresses()?;
    let robot = Robot {
        node: running.node.clone(),
        scope,
        lifespan: args.lifespan,
        text: args.text,
        interval: args.interval,
    };
    let outcome = robot.run(events).await;
    drop(robot);
    running.stop().await?;
    outcome
}

struct Robot {
    node: Node,
    scope: Scope,
    lifespan: Duration,
    text: String,
    interval: Duration,
}

impl Robot {
    async fn run(&self, mut events: broadcast::Receiver<NodeEvent>) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut talk: Option<tokio::time::Interval> = None;
        let mut said = 0u64;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
                _ = async { talk.as_mut()?.tick().await; Some(()) }, if talk.is_some() => {
                    said += 1;
                    let text = format!("{} {said}", self.text);
                    match self.say(&text).await {
                        Ok(()) => super::out!("said {text}"),
                        Err(e) => eprintln!("could not speak: {e}"),
                    }
                }
                event = events.recv() => match event {
                    Ok(NodeEvent::Stored { id, from: Some(_) }) => {
                        match self.order(id).await {
                            Some(Order::Talk) if talk.is_none() => {
                                let mut every = tokio::time::interval(self.interval);
                                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                                talk = Some(every);
                                super::out!("talking every {}", humantime::format_duration(self.interval));
                                self.ack(&format!(
                                    "talking every {} (!hush stops)",
                                    humantime::format_duration(self.interval)
                                )).await;
                            }
                            Some(Order::Hush) if talk.is_some() => {
                                talk = None;
                                super::out!("hushed");
                                self.ack("hushed (!talk starts again)").await;
                            }
                            _ => {}
                        }
                    }
                    Ok(NodeEvent::Listening(addr)) => super::out!("listening on {addr}"),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    async fn say(&self, text: &str) -> Result<(), crate::node::PostError> {
        let letter = Letter {
            text: Some(text.to_string()),
            ..Letter::default()
        };
        self.scope.post(&self.node, letter, self.lifespan).await?;
        Ok(())
    }

    async fn ack(&self, text: &str) {
        if let Err(e) = self.say(text).await {
            eprintln!("could not answer: {e}");
        }
    }

    /// The order in message `id`, if it is addressed to this node and readable.
    async fn order(&self, id: crate::message::MessageId) -> Option<Order> {
        let stored = self.node.store().get(id).await.ok()??;
        let me = self.node.me();
        if !crate::node::relay::addresses(&stored.header, me, crate::message::now_ms()) {
            return None;
        }
        let reader = views::Reader {
            data_dir: &self.node.config().data_dir,
            identity: self.node.identity(),
            me,
            roots: self.node.roots(),
            save_dir: None,
        };
        let identity = self.node.identity().clone();
        let dir = self.node.config().data_dir.clone();
        // Group files are read on a blocking thread (a group may have been joined since).
        let keyring = tokio::task::spawn_blocking(move || {
            Keyring::new(&identity, Groups::at(&dir).usable()).ok()
        })
        .await
        .ok()??;
        let keyring = std::sync::Arc::new(keyring);
        let view = views::read(self.node.store(), &reader, &keyring, &stored)
            .await
            .ok()?;
        Order::of(view.text.as_deref()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_intervals() {
        assert_eq!(Order::of(" !talk\n"), Some(Order::Talk));
        assert_eq!(Order::of("!hush"), Some(Order::Hush));
        assert_eq!(Order::of("please !talk"), None);
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(
            parse_interval("10ms"),
            Err("`10ms` is shorter than the minimum of 100ms".into())
        );
    }
}
