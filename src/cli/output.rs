//! Output formatting shared by commands: upstream's tables and size strings.

pub use crate::display::{format_g3, format_size};

/// A table in the layout upstream's `images` prints (gotabulate "simple", left aligned):
/// each cell is ` text ` padded to the column's widest entry plus five, columns joined by
/// two spaces, dashed lines above and below the header and at the bottom.
pub fn simple_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain(std::iter::once(headers[i].chars().count()))
                .max()
                .unwrap_or(0)
                + 5
        })
        .collect();
    let line = widths
        .iter()
        .map(|w| "-".repeat(*w))
        .collect::<Vec<_>>()
        .join("  ");
    let fmt_row = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .zip(&widths)
            .map(|(c, w)| {
                let cell = format!(" {c} ");
                let pad = w.saturating_sub(cell.chars().count());
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = String::new();
    out.push_str(&line);
    out.push('\n');
    out.push_str(&fmt_row(&mut headers.iter().copied()));
    out.push('\n');
    out.push_str(&line);
    out.push('\n');
    for r in rows {
        out.push_str(&fmt_row(&mut r.iter().map(String::as_str)));
        out.push('\n');
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_matches_gotabulate_simple() {
        let t = simple_table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "--------  -------");
        assert_eq!(lines[1], " A         BB    ");
        assert_eq!(lines[3], " xyz       1     ");
        assert_eq!(lines.len(), 5);
    }
}
