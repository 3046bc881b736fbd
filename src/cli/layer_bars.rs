//! One progress display per layer for `save` and `load`: a bar on a terminal, plain lines
//! otherwise (see [`crate::cli::progress`]).

use crate::cli::progress::{bytes_bar, Bar};
use crate::image::load::Progress;
use std::io::IsTerminal;

pub struct LayerBars {
    verb: &'static str,
    current: Option<Bar>,
    plain: bool,
}

impl LayerBars {
    pub fn new(verb: &'static str) -> Self {
        LayerBars {
            verb,
            current: None,
            plain: !std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&mut self, p: Progress) {
        match p {
            Progress::Layer { n, total, id, size } => {
                if let Some(b) = self.current.take() {
                    b.finish();
                }
                let what = format!("{} layer {n}/{total} {id}", self.verb);
                if self.plain {
                    eprintln!("{what}");
                }
                self.current = Some(bytes_bar(size, &what));
            }
            Progress::Bytes(n) => {
                if let Some(b) = &self.current {
                    b.set(n);
                }
            }
            Progress::LayerDone => {
                if let Some(b) = self.current.take() {
                    b.finish();
                }
            }
            Progress::LayerExists { id } => {
                if self.plain {
                    eprintln!("Layer {id} already exists");
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.current.take() {
            b.finish();
        }
    }
}
