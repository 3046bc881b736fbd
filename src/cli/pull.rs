//! `ctr-img pull`.

use crate::cli::{open_store, CliError};
use crate::config::Settings;
use crate::digest::Digest;
use crate::registry::pull::{self, Progress};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Image to pull: [REGISTRY/]REPOSITORY[:TAG|@DIGEST]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

/// Per-layer progress: bars on a terminal, one line per event otherwise (stderr).
pub struct LayerProgress {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl LayerProgress {
    pub fn new() -> LayerProgress {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        LayerProgress {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A blob starts moving.
    pub fn start(&self, verb: &str, d: &Digest, size: u64) {
        match &self.multi {
            Some(m) => {
                let b = m.add(ProgressBar::new(size));
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:25}] {bytes}/{total_bytes} ({bytes_per_sec})",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                b.set_style(style);
                b.set_message(format!("{verb} blob {}", d.short()));
                self.bars().insert(d.clone(), b);
            }
            // Plain mode (not a terminal): one line per finished blob only.
            None => tracing::debug!("{verb} blob {d} ({})", HumanBytes(size)),
        }
    }

    pub fn bytes(&self, d: &Digest, n: u64) {
        if let Some(b) = self.bars().get(d) {
            b.set_position(n);
        }
    }

    pub fn done(&self, d: &Digest, how: &str) {
        match self.bars().remove(d) {
            Some(b) => b.finish_with_message(format!("Blob {} {how}", d.short())),
            None if self.multi.is_none() => eprintln!("Blob {d} {how}"),
            None => {
                if let Some(m) = &self.multi {
                    let _ = m.println(format!("Blob {} {how}", d.short()));
                }
            }
        }
    }

    /// A line shown on a terminal only.
    pub fn note(&self, s: &str) {
        if let Some(m) = &self.multi {
            let _ = m.println(s);
        }
    }

    pub fn line(&self, s: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => eprintln!("{s}"),
        }
    }
}

impl Default for LayerProgress {
    fn default() -> Self {
        Self::new()
    }
}

pub fn run(settings: &Settings, args: PullArgs) -> Result<(), CliError> {
    let store = open_store(settings)?;
    let ui = LayerProgress::new();
    let on = |p: Progress<'_>| match p {
        Progress::Resolved { name } => ui.note(&format!("Pulling {name}")),
        Progress::Present => ui.line("Image is up to date"),
        Progress::LayerStart { digest, size } => ui.start("Copying", digest, size),
        Progress::LayerBytes { digest, done } => ui.bytes(digest, done),
        Progress::LayerExists { digest } => ui.done(digest, "already exists"),
        Progress::LayerDone { digest } => ui.done(digest, "done"),
    };
    match pull::pull(&store, settings, &args.reference, &on) {
        Ok(p) => {
            ui.note(&format!("Image ID: {}", p.id));
            println!("Pull success with image: {}", args.reference);
            Ok(())
        }
        Err(e) => Err(CliError::Other(format!("pull image failed: {e}"))),
    }
}
