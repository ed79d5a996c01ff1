//! Draws the chat: a title bar, the history (wrapped, newest at the bottom, scrollable), a
//! progress bar per transfer in flight, and the input line. Reads [`App`] only.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::app::{short_peer, App, Entry, Kind};
use crate::node::transfers::{Direction, TransferView};

/// Most progress bars shown at once (the rest are counted in the last one's label).
pub const MAX_BARS: usize = 4;

/// Draws `app` on the whole frame.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let bars = app.transfers.len().min(MAX_BARS);
    let [title, history, progress, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(u16::try_from(bars).unwrap_or(0)),
        Constraint::Length(3),
    ])
    .areas(frame.area());
    let heading = format!(" mule chat · {} · {} · /help", app.title, app.status);
    frame.render_widget(
        Paragraph::new(heading).style(Style::new().add_modifier(Modifier::REVERSED)),
        title,
    );
    frame.render_widget(Paragraph::new(history_lines(app, history)), history);
    for (i, t) in app.transfers.iter().take(bars).enumerate() {
        let area = Rect {
            y: progress.y + u16::try_from(i).unwrap_or(0),
            height: 1,
            ..progress
        };
        frame.render_widget(gauge(app, t), area);
    }
    let prompt = format!("> {}", app.input);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(" message · Enter sends · /quit ");
    let inner = block.inner(input);
    frame.render_widget(Paragraph::new(prompt.as_str()).block(block), input);
    let typed = u16::try_from(text_width(&prompt)).unwrap_or(u16::MAX);
    frame.set_cursor_position(Position::new(
        inner.x + typed.min(inner.width.saturating_sub(1)),
        inner.y,
    ));
}

/// The history lines that fit `area`, wrapped to its width, scrolled by `app.scroll`.
fn history_lines(app: &App, area: Rect) -> Vec<Line<'static>> {
    let width = usize::from(area.width.max(1));
    let height = usize::from(area.height);
    // Wrap from the newest entry back until the screen (plus the scroll) is full.
    let want = height.saturating_add(app.scroll);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for entry in app.entries().rev() {
        let mut wrapped = entry_lines(entry, width);
        wrapped.reverse();
        lines.extend(wrapped);
        if lines.len() >= want {
            break;
        }
    }
    lines.reverse();
    let end = lines
        .len()
        .saturating_sub(app.scroll.min(lines.len().saturating_sub(height)));
    let start = end.saturating_sub(height);
    lines.drain(start..end).collect()
}

/// One entry as lines of at most `width` columns: a dim time, the sender, hops and age, then the
/// text, continued under itself.
pub fn entry_lines(entry: &Entry, width: usize) -> Vec<Line<'static>> {
    let mut head: Vec<Span<'static>> = Vec::new();
    if let Some(ms) = entry.time_ms {
        head.push(Span::styled(
            format!("{} ", clock(ms)),
            Style::new().fg(Color::DarkGray),
        ));
    }
    if !entry.who.is_empty() {
        let colour = match entry.kind {
            Kind::Mine => Color::Green,
            Kind::Pong => Color::Magenta,
            _ => Color::Cyan,
        };
        head.push(Span::styled(
            format!("{} ", entry.who),
            Style::new().fg(colour).add_modifier(Modifier::BOLD),
        ));
    }
    let mut meta = Vec::new();
    if let Some(h) = entry.hops {
        meta.push(super::app::hops_text(h as u64));
    }
    if let Some(age) = entry.age_ms {
        meta.push(age_text(age));
    }
    if !meta.is_empty() {
        head.push(Span::styled(
            format!("[{}] ", meta.join(", ")),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let style = match entry.kind {
        Kind::Warning => Style::new().fg(Color::Yellow),
        Kind::Info => Style::new().fg(Color::Blue),
        Kind::Pong => Style::new().fg(Color::Magenta),
        Kind::Message | Kind::Mine => Style::new(),
    };
    let indent = head.iter().map(|s| text_width(&s.content)).sum::<usize>();
    // A head wider than the screen leaves the text its own lines.
    let indent = if indent + 8 > width { 0 } else { indent };
    let mut chunks = wrap(&entry.text, width.saturating_sub(indent).max(1)).into_iter();
    let first = chunks.next().unwrap_or_default();
    let mut out = Vec::new();
    if indent == 0 && !head.is_empty() {
        out.push(Line::from(head));
        out.push(Line::from(Span::styled(first, style)));
    } else {
        head.push(Span::styled(first, style));
        out.push(Line::from(head));
    }
    for chunk in chunks {
        out.push(Line::from(vec![
            Span::raw(" ".repeat(indent)),
            Span::styled(chunk, style),
        ]));
    }
    out
}

/// Splits `text` into pieces of at most `width` columns (at spaces when it can; lines of the
/// text stay lines).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut used = 0;
        for word in para.split_inclusive(' ') {
            let w = text_width(word);
            // A trailing space may hang past the edge; the word itself must fit.
            if used + text_width(word.trim_end()) > width && used > 0 {
                out.push(std::mem::take(&mut line).trim_end().to_string());
                used = 0;
            }
            if w > width {
                // A word longer than the line: cut it by columns.
                for c in word.chars() {
                    let cw = c.width().unwrap_or(0);
                    if used + cw > width && used > 0 {
                        out.push(std::mem::take(&mut line));
                        used = 0;
                    }
                    line.push(c);
                    used += cw;
                }
            } else {
                line.push_str(word);
                used += w;
            }
        }
        out.push(line.trim_end().to_string());
    }
    out
}

fn text_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `HH:MM:SS` in UTC.
pub fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// How old a message was when it arrived: `0.4s`, `12s`, `5m`, `3h`, `2d`.
pub fn age_text(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..120_000 => format!("{}s", ms / 1000),
        120_000..7_200_000 => format!("{}m", ms / 60_000),
        7_200_000..172_800_000 => format!("{}h", ms / 3_600_000),
        _ => format!("{}d", ms / 86_400_000),
    }
}

fn gauge(app: &App, t: &TransferView) -> Gauge<'static> {
    let ratio = if t.length == 0 {
        1.0
    } else {
        (t.done as f64 / t.length as f64).clamp(0.0, 1.0)
    };
    let what = app
        .shares
        .get(&t.id)
        .cloned()
        .unwrap_or_else(|| super::app::short_id(&t.id));
    let (arrow, side) = match t.direction {
        Direction::In => ("↓", "from"),
        Direction::Out => ("↑", "to"),
    };
    let label = format!(
        "{arrow} {what} {side} {}: {} of {} ({}/s)",
        short_peer(&t.peer),
        indicatif::HumanBytes(t.done),
        indicatif::HumanBytes(t.length),
        indicatif::HumanBytes(t.rate as u64),
    );
    Gauge::default()
        .ratio(ratio)
        .label(label)
        .gauge_style(Style::new().fg(Color::Green).bg(Color::Black))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::views::{MessageView, Sealed};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    fn arrival(id: &str, text: &str) -> MessageView {
        MessageView {
            id: id.into(),
            sender: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo".into(),
            sender_names: vec!["campfire/bob".into()],
            recipient: "*".into(),
            created_ms: 45_296_000, // 12:34:56
            received_ms: 45_298_500,
            expires_ms: 99_999_999,
            length: 3,
            hops: vec!["relay".into()],
            text: Some(text.into()),
            file: None,
            sealed: Some(Sealed::ForGroup("campfire".into())),
            attachment: None,
            note: None,
            ping: false,
            pong: None,
        }
    }

    #[test]
    fn a_history_line_shows_time_sender_hops_age_and_text() {
        let mut app = App::new("group campfire");
        app.status = "1 peer".into();
        app.arrived(&arrival("aa", "fire at the north beach"), 45_299_000);
        let rows = screen(&app, 80, 10);
        assert!(
            rows[0].contains("mule chat · group campfire · 1 peer"),
            "{rows:?}"
        );
        let line = rows.iter().find(|r| r.contains("campfire/bob")).unwrap();
        assert!(
            line.starts_with("12:34:56 campfire/bob [2 hops, 2.5s] fire at the north beach"),
            "{line}"
        );
        assert!(rows[8].starts_with("│> "), "{rows:?}");
    }

    #[test]
    fn long_text_wraps_under_itself_and_the_newest_stays_visible() {
        let mut app = App::new("x");
        for i in 0..30 {
            app.info(format!("note {i}"));
        }
        app.arrived(&arrival("bb", &"word ".repeat(30)), 45_299_000);
        let rows = screen(&app, 60, 12);
        // Rows 1..9 are the history (title, 3 input rows).
        let history = &rows[1..9];
        let last = history.last().unwrap().trim_end();
        assert!(last.ends_with("word"), "{history:?}");
        let indent = "12:34:56 campfire/bob [2 hops, 2.5s] ".chars().count();
        assert!(history[history.len() - 1].starts_with(&" ".repeat(indent)));
        // Scrolling up shows older notes.
        app.scroll = 5;
        let rows = screen(&app, 60, 12);
        assert!(
            rows[1..9].iter().any(|r| r.starts_with("note 29")),
            "{rows:?}"
        );
    }

    #[test]
    fn transfers_show_as_progress_bars() {
        let mut app = App::new("x");
        app.shares.insert("cc".repeat(32), "photo.jpg".into());
        app.transfers = vec![TransferView {
            id: "cc".repeat(32),
            peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo".into(),
            direction: Direction::Out,
            done: 512 * 1024,
            length: 1024 * 1024,
            rate: 1024.0,
            eta_s: Some(512.0),
        }];
        let rows = screen(&app, 100, 10);
        let bar = rows.iter().find(|r| r.contains("photo.jpg")).unwrap();
        assert!(
            bar.contains("↑ photo.jpg to …CVe2Xo: 512.00 KiB of 1.00 MiB"),
            "{bar}"
        );
    }

    #[test]
    fn wrapping_and_formats() {
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\ntwo", 10), vec!["one", "two"]);
        assert_eq!(wrap("日本語です", 4), vec!["日本", "語で", "す"]);
        assert_eq!(clock(45_296_000), "12:34:56");
        assert_eq!(age_text(2_500), "2.5s");
        assert_eq!(age_text(75_000), "75s");
        assert_eq!(age_text(600_000), "10m");
        assert_eq!(age_text(3 * 86_400_000), "3d");
    }
}
