//! Drawing the dashboard: a title line, the program table, the selected program's log tail,
//! a footer (key hints, the filter being typed, or the outcome of the last action), and the
//! overlays (help, confirmation, signal choice).
//!
//! Only the rows that fit on the screen are turned into widgets, so a frame costs the same
//! with 10 programs or 10,000. Colours are left out entirely when the user asked for none
//! (NO_COLOR); the selection and the headers use reverse video and bold, which are not colours.

use super::model::{Model, Row, SortKey};
use super::{Mode, SIGNALS, Tone, Ui};
use crate::cli::status::{detail, human_bytes, human_duration};
use crate::protocol::State;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table};

/// The keys, as the help overlay and docs/cli.md list them.
pub const KEYS: &[(&str, &str)] = &[
    ("Up/Down, j/k", "select a program"),
    ("PgUp/PgDn, Home/End", "move a page, to the first or the last"),
    ("/", "filter by name (Enter keeps it, Esc clears it)"),
    ("o / O", "sort by the next column / reverse the order"),
    ("s", "start the selected program"),
    ("x", "stop it (asks first)"),
    ("r", "restart it (asks first)"),
    ("K", "send it a signal (choose, then confirm)"),
    ("R", "reload the config (asks first)"),
    ("?", "this help"),
    ("Esc", "close, cancel, clear the filter or the message"),
    ("q, Ctrl-C", "quit"),
];

/// Fixed columns after NAME: title, width.
const COLUMNS: [(&str, u16); 7] =
    [("STATE", 8), ("READY", 9), ("PID", 7), ("UPTIME", 7), ("RESTARTS", 8), ("CPU", 6), ("MEM", 8)];

/// Narrowest useful DETAIL column; below it the column is left out (an 80-column screen).
const MIN_DETAIL: u16 = 24;

/// Draws one frame. `now` is Unix time, for uptimes.
pub fn draw(f: &mut Frame, m: &mut Model, ui: &mut Ui, now: f64) {
    let [title, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1), Constraint::Length(1)]).areas(f.area());
    // The table takes what its rows need, up to 60% of the screen; the log gets the rest.
    let rows = m.view().len().max(1) as u32 + 1;
    let table_h = rows.min(u32::from(body.height) * 3 / 5).max(2) as u16;
    let [table, logs] = Layout::vertical([Constraint::Length(table_h), Constraint::Fill(1)]).areas(body);
    draw_title(f, m, ui, title);
    let with_detail = draw_table(f, m, ui, table, now);
    // Without a DETAIL column (80 columns), the selected program's detail goes above its log.
    let detail = if with_detail {
        None
    } else {
        m.selected().map(|r| super::clean(&detail(&r.status, now))).filter(|d| !d.is_empty())
    };
    draw_logs(f, ui, logs, detail);
    draw_footer(f, m, ui, footer);
    match &ui.mode {
        Mode::Help => draw_help(f, ui),
        Mode::Confirm(action) => {
            let text = format!("{}?  y: yes   any other key: no", action.describe());
            popup(f, ui, " confirm ", vec![Line::from(text)]);
        }
        Mode::PickSignal { target, choice } => {
            let mut lines = vec![Line::from(format!("Send which signal to {target}?")), Line::from("")];
            for (i, sig) in SIGNALS.iter().enumerate() {
                let style = if i == *choice { Style::new().add_modifier(Modifier::REVERSED) } else { Style::new() };
                lines.push(Line::styled(format!(" {} SIG{sig} ", i + 1), style));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("Up/Down or 1-7, Enter: choose   Esc: cancel"));
            popup(f, ui, " signal ", lines);
        }
        Mode::Normal | Mode::Filter => {}
    }
}

fn color(ui: &Ui, c: Color) -> Style {
    if ui.color { Style::new().fg(c) } else { Style::new() }
}

/// The style of a state, as `svc status` colours it: green when well, yellow on the way, red
/// when failing, dim when stopped.
fn state_style(ui: &Ui, s: State) -> Style {
    match s {
        State::Running => color(ui, Color::Green),
        State::Starting | State::Stopping => color(ui, Color::Yellow),
        State::Backoff | State::Fatal => color(ui, Color::Red).add_modifier(Modifier::BOLD),
        State::Exited => color(ui, Color::Red),
        State::Stopped => Style::new().add_modifier(Modifier::DIM),
    }
}

fn draw_title(f: &mut Frame, m: &mut Model, ui: &Ui, area: Rect) {
    let total = m.rows().len();
    let (running, failing) = m.counts();
    let shown = m.view().len();
    let mut spans = vec![
        Span::styled("svc top", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("  {total} programs, {running} running, ")),
        Span::styled(format!("{failing} failing"), if failing > 0 { color(ui, Color::Red) } else { Style::new() }),
    ];
    let (key, reverse) = m.sort();
    spans.push(Span::raw(format!(
        "  sort: {}{}",
        key.label().to_lowercase(),
        if reverse { " (reversed)" } else { "" }
    )));
    if !m.filter().is_empty() {
        spans.push(Span::raw(format!("  filter: {} ({shown} shown)", m.filter())));
    }
    if ui.shutting_down {
        spans.push(Span::styled("  daemon shutting down", color(ui, Color::Yellow)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Draws the table; returns whether it has a DETAIL column.
fn draw_table(f: &mut Frame, m: &mut Model, ui: &mut Ui, area: Rect, now: f64) -> bool {
    let fixed: u16 = COLUMNS.iter().map(|(_, w)| w + 1).sum();
    let longest = m.rows().iter().map(|r| r.label.chars().count()).max().unwrap_or(4);
    let name_w = (longest.clamp(4, 40) as u16).min(area.width.saturating_sub(fixed));
    let with_detail = area.width >= fixed + name_w + 1 + MIN_DETAIL;
    let (key, reverse) = m.sort();
    let arrow = if reverse { "▲" } else { "▼" };
    let mut header: Vec<String> =
        std::iter::once("NAME").chain(COLUMNS.iter().map(|(t, _)| *t)).map(String::from).collect();
    if with_detail {
        header.push("DETAIL".into());
    }
    let sorted_col = match key {
        SortKey::Name => 0,
        SortKey::State => 1,
        SortKey::Pid => 3,
        SortKey::Uptime => 4,
        SortKey::Restarts => 5,
        SortKey::Cpu => 6,
        SortKey::Memory => 7,
    };
    header[sorted_col].push_str(arrow);
    let mut widths = vec![if with_detail { Constraint::Length(name_w) } else { Constraint::Fill(1) }];
    widths.extend(COLUMNS.iter().map(|(_, w)| Constraint::Length(*w)));
    if with_detail {
        widths.push(Constraint::Fill(1));
    }

    // Only the rows on screen become widgets; the offset keeps the selection in view.
    let visible = usize::from(area.height.saturating_sub(1));
    ui.page = visible.max(1);
    let view = m.view().to_vec();
    let selected = m.selected_pos();
    if let Some(sel) = selected {
        if sel < ui.offset {
            ui.offset = sel;
        } else if visible > 0 && sel >= ui.offset + visible {
            ui.offset = sel + 1 - visible;
        }
    }
    ui.offset = ui.offset.min(view.len().saturating_sub(visible));
    let rows: Vec<TableRow> = view
        .iter()
        .enumerate()
        .skip(ui.offset)
        .take(visible)
        .map(|(pos, &i)| {
            let row = table_row(&m.rows()[i], ui, now, with_detail);
            if Some(pos) == selected { row.style(Style::new().add_modifier(Modifier::REVERSED)) } else { row }
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, widths)
        .header(TableRow::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1);
    f.render_widget(table, area);
    if empty {
        let text = if m.rows().is_empty() { "no programs" } else { "no program matches the filter" };
        let line = Rect { y: area.y + 1, height: 1.min(area.height.saturating_sub(1)), ..area };
        f.render_widget(Paragraph::new(text).style(Style::new().add_modifier(Modifier::DIM)), line);
    }
    with_detail
}

fn table_row(r: &Row, ui: &Ui, now: f64, with_detail: bool) -> TableRow<'static> {
    let s = &r.status;
    let up = r.is_up();
    let ready = match (up, s.health.as_deref(), s.ready) {
        (false, _, _) => "-",
        (true, Some("unhealthy"), _) => "unhealthy",
        (true, Some("healthy"), _) => "healthy",
        (true, _, true) => "yes",
        (true, _, false) => "no",
    };
    let ready_style = match ready {
        "unhealthy" => color(ui, Color::Red),
        "no" => color(ui, Color::Yellow),
        _ => Style::new(),
    };
    let dash = || "-".to_owned();
    let mut cells = vec![
        Cell::from(r.label.clone()),
        Cell::from(s.state.as_str()).style(state_style(ui, s.state)),
        Cell::from(ready).style(ready_style),
        Cell::from(s.pid.map_or_else(dash, |p| p.to_string())),
        Cell::from(if up { human_duration(now - s.since) } else { dash() }),
        Cell::from(s.restarts.to_string()),
        Cell::from(r.cpu.map_or_else(dash, |c| format!("{c:.1}%"))),
        Cell::from(s.memory_bytes.map_or_else(dash, human_bytes)),
    ];
    if with_detail {
        cells.push(Cell::from(super::clean(&detail(s, now))));
    }
    TableRow::new(cells)
}

fn draw_logs(f: &mut Frame, ui: &Ui, area: Rect, detail: Option<String>) {
    let title = match (&ui.logs.name, detail) {
        (Some(name), Some(detail)) => format!(" {name}: {detail} "),
        (Some(name), None) => format!(" {name} (logs, following) "),
        (None, _) => " logs ".to_owned(),
    };
    let block = Block::new().borders(Borders::TOP).title(title).border_style(Style::new().add_modifier(Modifier::DIM));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let height = usize::from(inner.height);
    let mut lines: Vec<Line> = ui
        .logs
        .tail(height)
        .map(|(err, text)| {
            if err {
                Line::from(vec![Span::styled("err|", color(ui, Color::Red)), Span::raw(text.to_owned())])
            } else {
                Line::raw(text.to_owned())
            }
        })
        .collect();
    if let Some(note) = &ui.logs.note {
        lines.push(Line::styled(note.clone(), Style::new().add_modifier(Modifier::DIM)));
        if lines.len() > height {
            lines.remove(0);
        }
    }
    f.render_widget(Paragraph::new(Text::from(lines)), inner);
}

fn draw_footer(f: &mut Frame, m: &Model, ui: &Ui, area: Rect) {
    let line = match (&ui.mode, &ui.message) {
        (Mode::Filter, _) => Line::from(vec![
            Span::styled("/", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(m.filter().to_owned()),
            Span::styled(" ", Style::new().add_modifier(Modifier::REVERSED)),
            Span::styled("  Enter: keep  Esc: clear", Style::new().add_modifier(Modifier::DIM)),
        ]),
        (_, Some((text, tone))) => {
            let style = match tone {
                Tone::Info => Style::new(),
                Tone::Good => color(ui, Color::Green),
                Tone::Bad => color(ui, Color::Red).add_modifier(Modifier::BOLD),
            };
            Line::styled(text.clone(), style)
        }
        _ => Line::styled(
            "q quit  ? help  / filter  o sort  s start  x stop  r restart  K signal  R reload",
            Style::new().add_modifier(Modifier::DIM),
        ),
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_help(f: &mut Frame, ui: &Ui) {
    let key_w = KEYS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<key_w$}  "), Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("Actions go to the daemon; what it answers shows at the bottom."));
    lines.push(Line::from("Any key closes this help."));
    popup(f, ui, " svc top: keys ", lines);
}

/// A bordered box in the middle of the screen, as large as its text (within the screen).
fn popup(f: &mut Frame, _ui: &Ui, title: &str, lines: Vec<Line>) {
    let area = f.area();
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4;
    let height = lines.len() as u16 + 2;
    let rect = area.centered(Constraint::Length(width.min(area.width)), Constraint::Length(height.min(area.height)));
    f.render_widget(Clear, rect);
    let block = Block::bordered().title(title.to_owned());
    f.render_widget(Paragraph::new(Text::from(lines)).block(block), rect);
}
