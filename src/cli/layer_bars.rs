//! One progress display per layer for `save` and `load`: a bar on a terminal; otherwise a
//! plain line every few seconds while a layer is slow (see [`crate::cli::progress`]), so
//! quick operations print only their result and errors stay one line.

use crate::cli::progress::{bytes_bar, Bar};
use crate::image::load::Progress;

pub struct LayerBars {
    verb: &'static str,
    current: Option<Bar>,
}

impl LayerBars {
    pub fn new(verb: &'static str) -> Self {
        LayerBars {
            verb,
            current: None,
        }
    }

    pub fn update(&mut self, p: Progress) {
        match p {
            Progress::Layer { n, total, id, size } => {
                if let Some(b) = self.current.take() {
                    b.finish();
                }
                let what = format!("{} layer {n}/{total} {id}", self.verb);
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
            Progress::LayerExists { .. } => {}
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.current.take() {
            b.finish();
        }
    }
}
