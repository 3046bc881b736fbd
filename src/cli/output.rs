//! Output formatting shared by commands: upstream's tables and size strings.

/// Go's `%.3g` for the value range sizes take (non-negative, < 1e6 after scaling).
pub fn format_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    // Round to 3 significant digits first; rounding may bump the exponent (999.6 -> 1e+03).
    let scale = 10f64.powi(2 - exp);
    let rounded = (v * scale).round() / scale;
    let exp = if rounded == 0.0 {
        0
    } else {
        rounded.abs().log10().floor() as i32
    };
    if !(-4..3).contains(&exp) {
        let mantissa = rounded / 10f64.powi(exp);
        let m = trim_zeros(&format!("{mantissa:.2}"));
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (2 - exp).max(0) as usize;
    trim_zeros(&format!("{rounded:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// Upstream's `FormatSize`: divide by `base` until below it, then `%.3g <unit>`.
pub fn format_size(size: f64, base: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut size = size;
    let mut i = 0;
    while size >= base && i < UNITS.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{} {}", format_g3(size), UNITS[i])
}

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
    fn go_g3_formatting() {
        assert_eq!(format_g3(1.0), "1");
        assert_eq!(format_g3(1.5), "1.5");
        assert_eq!(format_g3(1.23456), "1.23");
        assert_eq!(format_g3(12.345), "12.3");
        assert_eq!(format_g3(123.45), "123");
        assert_eq!(format_g3(999.4), "999");
        assert_eq!(format_g3(999.6), "1e+03");
        assert_eq!(format_size(1_234_567.0, 1000.0), "1.23 MB");
        assert_eq!(format_size(512.0, 1000.0), "512 B");
        assert_eq!(
            format_size(24.0 * 1024.0 * 1024.0 * 1024.0, 1024.0),
            "24 GB"
        );
    }

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
