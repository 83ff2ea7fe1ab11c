//! Text tables for terminals and markdown files, drawn by comfy-table.

use comfy_table::presets::{ASCII_MARKDOWN, NOTHING};
use comfy_table::{CellAlignment, ContentArrangement, Table};

/// How a table is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Aligned columns without borders, for a terminal.
    Plain,
    /// A GitHub markdown table.
    Markdown,
}

/// Draws `rows` under `header`; columns whose header is in `numeric` are right-aligned.
///
/// ```
/// use sepnet_train::table::{Style, draw};
/// let text = draw(Style::Markdown, &["model", "params"], &["params"], vec![vec!["a".into(), "1,000".into()]]);
/// assert_eq!(text.lines().nth(2).unwrap(), "| a     |  1,000 |");
/// ```
pub fn draw(style: Style, header: &[&str], numeric: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(match style {
            Style::Plain => NOTHING,
            Style::Markdown => ASCII_MARKDOWN,
        })
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for (i, name) in header.iter().enumerate() {
        if numeric.contains(name)
            && let Some(column) = table.column_mut(i)
        {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let text = table.to_string();
    match style {
        // NOTHING pads every line with a leading space; a terminal table starts at column 0.
        Style::Plain => {
            text.lines()
                .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        }
        Style::Markdown => text + "\n",
    }
}
