//! Progress on stderr with indicatif: bars for transfers in flight (`mule node`), for a pull,
//! and a spinner while the node seals and stores a file (`mule send --file`). Shown only when
//! stderr is a terminal and `--quiet` was not given; otherwise nothing is drawn at all.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::node::transfers::{Direction, TransferView};
use crate::node::{Node, PullProgress};

/// How often transfer bars are brought up to date.
const POLL: Duration = Duration::from_millis(250);
/// How often a spinner turns.
const TICK: Duration = Duration::from_millis(120);
/// Layout of a byte bar.
const BAR: &str = "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}";

/// Whether progress may be drawn: stderr is a terminal and the person did not ask for quiet.
pub(super) fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A spinner saying what is going on (`msg`), or `None` when progress is not wanted.
pub(super) fn spinner(quiet: bool, msg: String) -> Option<ProgressBar> {
    if !wanted(quiet) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        .with_style(style("{spinner} {msg} {elapsed}"))
        .with_message(msg);
    bar.enable_steady_tick(TICK);
    Some(bar)
}

/// Shows a pull's progress as a byte bar with the message counts, until `progress` closes.
pub(super) fn pull(quiet: bool, mut progress: watch::Receiver<PullProgress>) -> Option<Watcher> {
    if !wanted(quiet) {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        .with_style(style(BAR))
        .with_prefix("pulling");
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            let p = *progress.borrow_and_update();
            shown.set_length(p.bytes_total);
            shown.set_position(p.bytes_done);
            shown.set_message(format!(
                "{} of {} messages",
                p.messages_done, p.messages_total
            ));
        }
    });
    Some(Watcher { bar, task })
}

/// A bar kept up to date by a task; [`Watcher::finish`] clears it.
#[derive(Debug)]
pub(super) struct Watcher {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Stops updating and removes the bar from the terminal.
    pub(super) fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// One bar per multi-chunk transfer in flight at a running node, both ways.
#[derive(Debug)]
pub(super) struct Transfers {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Transfers {
    /// Starts showing `node`'s transfers, or `None` when progress is not wanted.
    pub(super) fn spawn(node: Node, quiet: bool) -> Option<Self> {
        if !wanted(quiet) {
            return None;
        }
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let mut bars: HashMap<(String, String, Direction), ProgressBar> = HashMap::new();
            let mut tick = tokio::time::interval(POLL);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tick.tick() => show(&multi, &mut bars, node.transfers()),
                }
            }
            for bar in bars.values() {
                bar.finish_and_clear();
            }
        });
        Some(Self { stop, task })
    }

    /// Removes the bars.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Brings the bars in line with `now`: new transfers get a bar, finished ones lose theirs.
fn show(
    multi: &MultiProgress,
    bars: &mut HashMap<(String, String, Direction), ProgressBar>,
    now: Vec<TransferView>,
) {
    let mut live = std::collections::HashSet::new();
    for t in now {
        let key = (t.id.clone(), t.peer.clone(), t.direction);
        let bar = bars.entry(key.clone()).or_insert_with(|| {
            let (arrow, side) = match t.direction {
                Direction::In => ("receiving", "from"),
                Direction::Out => ("sending", "to"),
            };
            let peer = t.peer.chars().rev().take(6).collect::<String>();
            let peer: String = peer.chars().rev().collect();
            multi.add(
                ProgressBar::new(t.length)
                    .with_style(style(BAR))
                    .with_prefix(format!(
                        "{arrow} {} {side} …{peer}",
                        t.id.chars().take(12).collect::<String>()
                    )),
            )
        });
        bar.set_length(t.length);
        bar.set_position(t.done);
        live.insert(key);
    }
    bars.retain(|key, bar| {
        let keep = live.contains(key);
        if !keep {
            bar.finish_and_clear();
            multi.remove(bar);
        }
        keep
    });
}
