//! Progress display on stderr: a bar on a terminal; on anything else (CI logs) a plain line
//! every few seconds, so short operations print nothing and long ones show they are alive.
//! Results go to stdout either way.

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

pub enum Bar {
    Terminal(ProgressBar),
    Plain {
        what: String,
        total: u64,
        last: Cell<Instant>,
    },
}

impl Bar {
    pub fn set(&self, n: u64) {
        match self {
            Bar::Terminal(b) => b.set_position(n),
            Bar::Plain { what, total, last } => {
                if last.get().elapsed() >= PLAIN_INTERVAL {
                    last.set(Instant::now());
                    eprintln!("{what}: {} of {}", HumanBytes(n), HumanBytes(*total));
                }
            }
        }
    }
    pub fn finish(&self) {
        if let Bar::Terminal(b) = self {
            b.finish_and_clear();
        }
    }
}

/// A byte-count progress display for `total` bytes.
pub fn bytes_bar(total: u64, what: &str) -> Bar {
    if !std::io::stderr().is_terminal() {
        return Bar::Plain {
            what: what.to_string(),
            total,
            last: Cell::new(Instant::now()),
        };
    }
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    b.set_style(style);
    b.set_message(what.to_string());
    Bar::Terminal(b)
}
