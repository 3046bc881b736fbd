//! Stream compression: detection by content (never by file name), decompressing readers,
//! and the one pinned gzip encoder (so digests never drift with the machine or the crate
//! backend), with its block-parallel form that push compresses layers with.

use std::io::{self, BufRead, BufReader, Read, Write};

/// Gzip level of every gzip stream we write. Pinned: changing it changes digests.
pub const GZIP_LEVEL: u32 = 1;

/// A compression format found by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Bzip2,
    Zstd,
}

impl Compression {
    /// Identify the format from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
        }
    }
}

/// Wrap `r` in the decompressor its first bytes call for. Returns the format found.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf()?;
    let kind = Compression::detect(head);
    let out: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(br),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(br)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(br)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(br)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(br)?),
    };
    Ok((kind, out))
}

/// The pinned gzip encoder: pinned level, no file name, zero mtime, OS byte fixed by the
/// flate2 builder — the same input always gives the same bytes.
pub fn gzip_writer<W: Write>(w: W) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(w, flate2::Compression::new(GZIP_LEVEL))
}

/// Input block size of [`gzip_blocks`]: every block becomes its own gzip member. Pinned
/// like [`GZIP_LEVEL`]: changing it changes the digests of pushed layers.
pub const GZIP_BLOCK: usize = 1 << 20;

/// Size and number of the samples [`gzip_member`] probes a block with.
const SAMPLE: usize = 16 * 1024;
const SAMPLES: usize = 4;

/// True when none of [`SAMPLES`] samples spread over `block` shrinks by 2 % under the
/// pinned level: random or already-compressed data, which deflate level 1 crawls through
/// (about 25 MB/s here, against 300 MB/s for text) to save nothing.
fn looks_incompressible(block: &[u8]) -> bool {
    if block.len() < SAMPLE * SAMPLES {
        return false;
    }
    let step = block.len() / SAMPLES;
    (0..SAMPLES).all(|i| {
        let sample = &block[i * step..i * step + SAMPLE];
        let mut z = flate2::write::DeflateEncoder::new(
            Vec::with_capacity(SAMPLE + 64),
            flate2::Compression::new(GZIP_LEVEL),
        );
        match z.write_all(sample).and_then(|_| z.finish()) {
            Ok(out) => out.len() * 100 >= sample.len() * 98,
            Err(_) => false,
        }
    })
}

/// One gzip member holding `block`: the pinned encoder, or — for a block that
/// [`looks_incompressible`] (a decision made from the block's bytes alone, so still
/// deterministic) — the same header around stored deflate blocks.
fn gzip_member(block: &[u8]) -> io::Result<Vec<u8>> {
    let level = if looks_incompressible(block) {
        flate2::Compression::none()
    } else {
        flate2::Compression::new(GZIP_LEVEL)
    };
    let mut w = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(block.len() / 2 + 64), level);
    w.write_all(block)?;
    w.finish()
}

/// Fill `buf` (up to its capacity of [`GZIP_BLOCK`]) from `r`; returns false at the end
/// of the input.
fn read_block<R: Read>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    buf.resize(GZIP_BLOCK, 0);
    let mut n = 0;
    while n < GZIP_BLOCK {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(n == GZIP_BLOCK)
}

/// Compress `r` into `w` as a gzip stream made of independent members, one per
/// [`GZIP_BLOCK`] bytes of input (the last one shorter; incompressible blocks stored, see
/// [`gzip_member`]), compressed on up to `threads`
/// threads and written in order. A concatenation of gzip members is one valid gzip stream
/// (RFC 1952 §2.2; every gzip reader, Go's included, reads all members), and since each
/// member depends only on its block, the output is a function of the input bytes alone —
/// however many threads ran. Empty input gives one empty member. Returns the input size.
pub fn gzip_blocks<R, W>(mut r: R, w: &mut W, threads: usize) -> io::Result<u64>
where
    R: Read + Send,
    W: Write + Send,
{
    let threads = threads.max(1);
    if threads == 1 {
        let mut total = 0u64;
        let mut buf = Vec::with_capacity(GZIP_BLOCK);
        let mut first = true;
        loop {
            let more = read_block(&mut r, &mut buf)?;
            if !buf.is_empty() || first {
                w.write_all(&gzip_member(&buf)?)?;
            }
            total += buf.len() as u64;
            first = false;
            if !more {
                return Ok(total);
            }
        }
    }
    use std::collections::BTreeMap;
    use std::sync::{mpsc, Arc, Mutex};
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(threads);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, io::Result<Vec<u8>>)>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            s.spawn(move || loop {
                let job = match rx.lock() {
                    Ok(g) => g.recv(),
                    Err(_) => return,
                };
                let Ok((i, block)) = job else { return };
                if tx.send((i, gzip_member(&block))).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let writer = s.spawn(move || -> io::Result<()> {
            let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            let mut next = 0u64;
            for (i, res) in done_rx {
                pending.insert(i, res?);
                while let Some(bytes) = pending.remove(&next) {
                    w.write_all(&bytes)?;
                    next += 1;
                }
            }
            if pending.is_empty() {
                Ok(())
            } else {
                Err(io::Error::other("parallel gzip: blocks missing"))
            }
        });
        let mut total = 0u64;
        let mut i = 0u64;
        let read = loop {
            let mut buf = Vec::with_capacity(GZIP_BLOCK);
            let more = match read_block(&mut r, &mut buf) {
                Ok(m) => m,
                Err(e) => break Err(e),
            };
            if buf.is_empty() && i > 0 {
                break Ok(());
            }
            total += buf.len() as u64;
            // A send fails only when the workers are gone: the writer failed; its error
            // is the one to report.
            if work_tx.send((i, buf)).is_err() {
                break Ok(());
            }
            i += 1;
            if !more {
                break Ok(());
            }
        };
        drop(work_tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("parallel gzip writer panicked")));
        read?;
        written?;
        Ok(total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(kind: Compression, data: &[u8]) -> Vec<u8> {
        let compressed = match kind {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut w = gzip_writer(Vec::new());
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Compression::Xz => {
                let mut w = liblzma::write::XzEncoder::new(Vec::new(), 1);
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                w.write_all(data).unwrap();
                w.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(data, 1).unwrap(),
        };
        let (found, mut r) = decompress(&compressed[..]).unwrap();
        assert_eq!(found, kind);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn every_format_is_detected_and_decoded() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        for kind in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Bzip2,
            Compression::Zstd,
        ] {
            assert_eq!(roundtrip(kind, &data), data, "{kind:?}");
        }
    }

    fn gzip_blocks_of(data: &[u8], threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let n = gzip_blocks(data, &mut out, threads).unwrap();
        assert_eq!(n, data.len() as u64);
        out
    }

    #[test]
    fn block_gzip_is_one_stream_and_does_not_depend_on_threads() {
        // 3.5 blocks of mixed content.
        let data: Vec<u8> = (0..(GZIP_BLOCK * 7 / 2) as u32)
            .map(|i| {
                if (i / 4096) % 2 == 0 {
                    (i % 251) as u8
                } else {
                    (i.wrapping_mul(2654435761) >> 13) as u8
                }
            })
            .collect();
        let one = gzip_blocks_of(&data, 1);
        for threads in [2, 3, 8] {
            assert_eq!(gzip_blocks_of(&data, threads), one, "{threads} threads");
        }
        // Four members, read back as one stream by a multi-member reader.
        let (kind, mut r) = decompress(&one[..]).unwrap();
        assert_eq!(kind, Compression::Gzip);
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        // The first member is the pinned encoder's output for the first block.
        let mut first = gzip_writer(Vec::new());
        first.write_all(&data[..GZIP_BLOCK]).unwrap();
        assert!(one.starts_with(&first.finish().unwrap()));
    }

    #[test]
    fn block_gzip_edge_sizes() {
        // Empty input is one empty member (a valid gzip stream); an exact multiple of the
        // block size has no trailing empty member.
        for len in [0, 1, GZIP_BLOCK, 2 * GZIP_BLOCK] {
            let data = vec![7u8; len];
            let z = gzip_blocks_of(&data, 2);
            assert_eq!(z, gzip_blocks_of(&data, 1));
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{len}");
            let members = len.div_ceil(GZIP_BLOCK).max(1);
            let mut single = gzip_writer(Vec::new());
            single.write_all(&data[..len.min(GZIP_BLOCK)]).unwrap();
            assert_eq!(z.len(), members * single.finish().unwrap().len(), "{len}");
        }
    }

    #[test]
    fn block_gzip_output_is_pinned() {
        // Pushed layer digests depend on these bytes: a change of level, block size, header
        // or deflate backend must be deliberate (it changes every pushed manifest).
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let z = gzip_blocks_of(&data, 2);
        assert_eq!(
            crate::digest::Digest::of(&z).to_string(),
            "sha256:94497e602c5cdc219adb005ccf49ed3f48d9c2f762ee50c5baf4bc0237fd77bc"
        );
    }

    #[test]
    fn incompressible_blocks_are_stored_and_still_read_back() {
        // xorshift noise: incompressible, deterministic.
        let mut x = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..GZIP_BLOCK + 1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut data = noise.clone();
        data.extend((0..GZIP_BLOCK as u32).map(|i| (i % 7) as u8));
        let z = gzip_blocks_of(&data, 2);
        // The noise block costs its size plus stored-block framing; the text block shrinks.
        assert!(
            z.len() < noise.len() + noise.len() / 100 + GZIP_BLOCK / 50,
            "{}",
            z.len()
        );
        assert!(looks_incompressible(&noise[..GZIP_BLOCK]));
        assert!(!looks_incompressible(&data[GZIP_BLOCK + 1000..]));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert_eq!(z, gzip_blocks_of(&data, 1));
    }

    #[test]
    fn block_gzip_reports_read_errors() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(1);
                self.0 -= n;
                Ok(n)
            }
        }
        for threads in [1, 2] {
            let mut out = Vec::new();
            let err = gzip_blocks(Failing(3 * GZIP_BLOCK + 5), &mut out, threads).unwrap_err();
            assert!(err.to_string().contains("disk on fire"));
        }
    }

    #[test]
    fn gzip_output_is_deterministic() {
        let mk = || {
            let mut w = gzip_writer(Vec::new());
            w.write_all(b"same bytes").unwrap();
            w.finish().unwrap()
        };
        assert_eq!(mk(), mk());
    }
}
