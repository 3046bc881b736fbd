//! Upstream's human-readable renderings of sizes and times, shared by the CLI and the
//! `isula-builder` server (which sends them to upstream clients already formatted).

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

/// An RFC 3339 time as upstream's `LayoutTime` ("2006-01-02 15:04:05") in local time;
/// the input unchanged when it does not parse.
pub fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
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
}
