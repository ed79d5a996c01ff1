//! The terminal side of `mule chat`, on threads of its own so the node's tokio workers never
//! wait for the terminal: one thread reads keys (crossterm's blocking reads, polled so it can
//! stop), the UI thread owns the state and the terminal, applies events and draws.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event as TermEvent};
use tokio::sync::mpsc;

use super::app::{App, Event};
use super::command::Command;

/// How long a key read waits before checking whether to stop.
const KEY_POLL: Duration = Duration::from_millis(100);
/// Redraw at least this often (ages and transfers move on their own).
const REDRAW: Duration = Duration::from_millis(500);

/// Reads keys until `stop` is set or the UI goes away.
pub(super) fn read_keys(events: SyncSender<Event>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match event::poll(KEY_POLL) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                let _ = events.send(Event::Warn(format!("cannot read the terminal: {e}")));
                return;
            }
        }
        let event = match event::read() {
            Ok(TermEvent::Key(key)) => Event::Key(key),
            Ok(TermEvent::Paste(text)) => Event::Paste(text),
            Ok(TermEvent::Resize(..)) => Event::Resize,
            Ok(_) => continue,
            Err(e) => Event::Warn(format!("cannot read the terminal: {e}")),
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Runs the UI until the person leaves or the session ends: applies events to `app`, hands
/// commands to the session, draws. Restores the terminal on the way out.
pub(super) fn run(
    mut app: App,
    events: Receiver<Event>,
    commands: mpsc::Sender<Command>,
) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> std::io::Result<()> {
        loop {
            terminal.draw(|frame| super::render::draw(frame, &app))?;
            let first = match events.recv_timeout(REDRAW) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            // Apply everything already waiting before drawing again.
            for event in std::iter::once(first).chain(events.try_iter()) {
                if let Some(command) = app.handle(event, crate::message::now_ms()) {
                    // This is a plain thread, not a tokio worker: waiting here is fine.
                    if commands.blocking_send(command).is_err() {
                        return Ok(());
                    }
                }
            }
            if app.quit {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result
}
