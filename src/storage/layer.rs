//! Layers: unpacked overlay diff dirs with their metadata, and staging a new layer from a
//! tar stream in one pass (unpack, diff_id, compressed blob and its digest).

use crate::compression;
use crate::digest::{Digest, Hasher};
use crate::storage::pack::{self, PackOptions};
use crate::storage::unpack::{self, UnpackOptions, UnpackStats};
use crate::storage::workspace::WorkDir;
use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Media type of the compressed layer blobs we store.
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `layers/<chain-id>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// Chain ID: identifies the layer together with everything below it.
    pub chain_id: Digest,
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Chain ID of the layer below, if any.
    pub parent: Option<Digest>,
    /// Size of the uncompressed tar.
    pub size: u64,
    /// The compressed blob of this layer in `blobs/`.
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
}

/// Chain ID of a layer with `diff_id` on top of `parent` (OCI image spec).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A layer unpacked in a work dir, ready to publish.
#[derive(Debug)]
pub struct StagedLayer {
    /// `<workdir>/layer-N/` holding `diff/` and `meta.json`.
    pub dir: PathBuf,
    /// The compressed blob file in the work dir.
    pub blob_path: PathBuf,
    pub meta: LayerMeta,
    pub stats: UnpackStats,
}

/// Size of the blocks fed to the layer compressor.
const COMPRESS_BLOCK: usize = 1 << 20;

/// A gzip compressor on its own thread, fed chunks of the uncompressed layer tar; it hashes
/// the compressed bytes and syncs the blob file.
struct Compressor {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    handle: std::thread::JoinHandle<io::Result<(Digest, u64)>>,
}

impl Compressor {
    fn start(blob_file: File) -> Compressor {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let handle = std::thread::spawn(move || -> io::Result<(Digest, u64)> {
            let hashing =
                crate::digest::HashingWriter::new(BufWriter::with_capacity(1 << 20, blob_file));
            let mut gz = compression::gzip_writer(hashing);
            // The compressor sees fixed-size blocks whatever sizes the producer happened to
            // write: deflate output depends on how input is split across writes, and the same
            // layer must give the same blob however it arrived (import, load, build).
            let mut block: Vec<u8> = Vec::with_capacity(COMPRESS_BLOCK);
            for chunk in rx {
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let take = (COMPRESS_BLOCK - block.len()).min(rest.len());
                    block.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if block.len() == COMPRESS_BLOCK {
                        gz.write_all(&block)?;
                        block.clear();
                    }
                }
            }
            gz.write_all(&block)?;
            let hashing = gz.finish()?;
            let (digest, len, mut w) = hashing.finish();
            w.flush()?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok((digest, len))
        });
        Compressor {
            tx: Some(tx),
            handle,
        }
    }

    fn send(&self, chunk: &[u8]) -> io::Result<()> {
        match &self.tx {
            Some(tx) => tx
                .send(chunk.to_vec())
                .map_err(|_| io::Error::other("layer compressor stopped")),
            None => Err(io::Error::other("layer compressor finished")),
        }
    }

    fn finish(mut self) -> Result<io::Result<(Digest, u64)>, StoreError> {
        drop(self.tx.take());
        self.handle
            .join()
            .map_err(|_| StoreError::Corrupt("layer compressor thread panicked".into()))
    }
}

/// Hashes the uncompressed tar and feeds it to the compressor, as a reader (unpack path).
struct TeeReader<'a, R> {
    inner: R,
    hasher: Hasher,
    compressor: &'a Compressor,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            self.compressor.send(&buf[..n])?;
        }
        Ok(n)
    }
}

/// The same as a writer (pack path). Buffers into 256 KiB chunks.
struct TeeWriter<'a> {
    hasher: Hasher,
    compressor: &'a Compressor,
    buf: Vec<u8>,
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hasher.update(data);
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.compressor.send(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

fn new_layer_paths(ws: &WorkDir) -> (PathBuf, PathBuf) {
    let n = crate::storage::fsutil::random_hex(4);
    (
        ws.child(&format!("layer-{n}")),
        ws.child(&format!("blob-{n}")),
    )
}

fn finish_staging(
    dir: PathBuf,
    blob_path: PathBuf,
    parent: Option<&Digest>,
    diff_id: Digest,
    size: u64,
    compressed: (Digest, u64),
    stats: UnpackStats,
) -> Result<StagedLayer, StoreError> {
    let (blob, blob_size) = compressed;
    let meta = LayerMeta {
        chain_id: chain_id(parent, &diff_id),
        diff_id,
        parent: parent.cloned(),
        size,
        blob,
        blob_size,
        media_type: MEDIA_TYPE_LAYER_GZIP.to_string(),
    };
    let meta_path = dir.join("meta.json");
    let bytes = serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    std::fs::write(&meta_path, bytes).map_err(|e| StoreError::io(&meta_path, e))?;
    Ok(StagedLayer {
        dir,
        blob_path,
        meta,
        stats,
    })
}

/// Unpack the uncompressed tar stream `tar_stream` into a new layer in `ws`, computing its
/// diff_id and writing its gzip blob at the same time (compression runs on its own thread).
pub fn stage_layer<R: Read>(
    ws: &WorkDir,
    tar_stream: R,
    parent: Option<&Digest>,
    opts: UnpackOptions,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path) = new_layer_paths(ws);
    let diff = dir.join("diff");
    std::fs::create_dir_all(&diff).map_err(|e| StoreError::io(&diff, e))?;
    let blob_file = File::create(&blob_path).map_err(|e| StoreError::io(&blob_path, e))?;
    let compressor = Compressor::start(blob_file);
    let mut tee = TeeReader {
        inner: tar_stream,
        hasher: Hasher::new(),
        compressor: &compressor,
    };
    let unpacked = unpack::unpack_layer(&mut tee, &diff, opts);
    let size = tee.hasher.len();
    let diff_id = std::mem::take(&mut tee.hasher).finish();
    let compressed = compressor.finish()?;
    let stats = unpacked?;
    let compressed = compressed.map_err(|e| StoreError::io(&blob_path, e))?;
    finish_staging(dir, blob_path, parent, diff_id, size, compressed, stats)
}

/// Copies every byte read from the blob stream into the blob file (hashing it), so a
/// layer received compressed is stored as received.
struct BlobTee<R> {
    inner: R,
    out: crate::digest::HashingWriter<BufWriter<File>>,
}

impl<R: Read> Read for BlobTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.out.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// Stage a layer from its blob as a registry or archive holds it (gzip, zstd or plain tar,
/// detected by content): the blob is kept byte for byte (no recompression) and its digest
/// computed while it streams; the decompressed tar is unpacked and its diff_id computed in
/// the same pass. `media_type` is recorded in the layer's meta. The caller compares
/// `meta.blob` with the digest it expected before publishing.
pub fn stage_layer_from_blob<R: Read>(
    ws: &WorkDir,
    blob_stream: R,
    media_type: &str,
    parent: Option<&Digest>,
    opts: UnpackOptions,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path) = new_layer_paths(ws);
    let diff = dir.join("diff");
    std::fs::create_dir_all(&diff).map_err(|e| StoreError::io(&diff, e))?;
    let blob_file = File::create(&blob_path).map_err(|e| StoreError::io(&blob_path, e))?;
    let mut tee = BlobTee {
        inner: blob_stream,
        out: crate::digest::HashingWriter::new(BufWriter::with_capacity(1 << 20, blob_file)),
    };
    let (diff_id, size, stats) = {
        let (_kind, tar_stream) =
            compression::decompress(&mut tee).map_err(|e| StoreError::io(&blob_path, e))?;
        let mut hashing = crate::digest::HashingReader::new(tar_stream);
        let stats = unpack::unpack_layer(&mut hashing, &diff, opts)?;
        let (diff_id, size, _) = hashing.finish();
        (diff_id, size, stats)
    };
    // Whatever follows the compressed stream still belongs to the blob and its digest.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| StoreError::io(&blob_path, e))?;
    let (blob, blob_size, w) = tee.out.finish();
    let f = w
        .into_inner()
        .map_err(|e| StoreError::io(&blob_path, e.into_error()))?;
    f.sync_all().map_err(|e| StoreError::io(&blob_path, e))?;
    let mut staged = finish_staging(
        dir,
        blob_path,
        parent,
        diff_id,
        size,
        (blob, blob_size),
        stats,
    )?;
    if staged.meta.media_type != media_type {
        staged.meta.media_type = media_type.to_string();
        let meta_path = staged.dir.join("meta.json");
        let bytes = serde_json::to_vec_pretty(&staged.meta)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        std::fs::write(&meta_path, bytes).map_err(|e| StoreError::io(&meta_path, e))?;
    }
    Ok(staged)
}

/// Turn the diff dir `src` (inside `ws`, e.g. a RUN's overlay upper dir) into a staged layer:
/// pack it to a deterministic tar (hashed and compressed on the fly), then move the dir into
/// place as the layer's unpacked form.
pub fn stage_layer_from_dir(
    ws: &WorkDir,
    src: &Path,
    parent: Option<&Digest>,
    opts: PackOptions,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path) = new_layer_paths(ws);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let blob_file = File::create(&blob_path).map_err(|e| StoreError::io(&blob_path, e))?;
    let compressor = Compressor::start(blob_file);
    let mut tee = TeeWriter {
        hasher: Hasher::new(),
        compressor: &compressor,
        buf: Vec::with_capacity(512 * 1024),
    };
    let packed = pack::pack_dir(src, &mut tee, opts).and_then(|n| {
        tee.flush().map_err(|e| pack::PackError::Io {
            path: src.to_path_buf(),
            source: e,
        })?;
        Ok(n)
    });
    let size = tee.hasher.len();
    let diff_id = std::mem::take(&mut tee.hasher).finish();
    let compressed = compressor.finish()?;
    let entries = packed.map_err(|e| StoreError::Corrupt(format!("packing layer: {e}")))?;
    let compressed = compressed.map_err(|e| StoreError::io(&blob_path, e))?;
    let diff = dir.join("diff");
    std::fs::rename(src, &diff).map_err(|e| StoreError::io(&diff, e))?;
    let stats = UnpackStats {
        entries,
        file_bytes: 0,
    };
    finish_staging(dir, blob_path, parent, diff_id, size, compressed, stats)
}

/// Read a layer's meta.json.
pub fn read_meta(layer_dir: &Path) -> Result<LayerMeta, StoreError> {
    let p = layer_dir.join("meta.json");
    let bytes = std::fs::read(&p).map_err(|e| StoreError::io(&p, e))?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("{}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        let expect = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(Some(&a), &b), expect);
    }

    #[test]
    fn staging_hashes_what_it_unpacks() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: false,
        };
        let st = stage_layer(&ws, &data[..], None, opts).unwrap();
        assert_eq!(st.meta.diff_id, Digest::of(&data));
        assert_eq!(st.meta.size, data.len() as u64);
        let blob = std::fs::read(&st.blob_path).unwrap();
        assert_eq!(Digest::of(&blob), st.meta.blob);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(std::fs::read(st.dir.join("diff/f")).unwrap(), b"abc");
    }

    #[test]
    fn staging_from_a_blob_keeps_the_blob() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"abc"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data).unwrap();
        let blob = gz.finish().unwrap();
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: true,
        };
        let st = stage_layer_from_blob(&ws, &blob[..], "application/x-test", None, opts).unwrap();
        assert_eq!(st.meta.blob, Digest::of(&blob));
        assert_eq!(st.meta.blob_size, blob.len() as u64);
        assert_eq!(st.meta.diff_id, Digest::of(&data));
        assert_eq!(st.meta.media_type, "application/x-test");
        assert_eq!(std::fs::read(&st.blob_path).unwrap(), blob);
        assert_eq!(std::fs::read(st.dir.join("diff/f")).unwrap(), b"abc");
    }

    #[test]
    fn blob_bytes_do_not_depend_on_how_the_tar_was_read() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: false,
        };
        /// Returns at most `n` bytes per read.
        struct Dribble<'a>(&'a [u8], usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let k = self.1.min(buf.len()).min(self.0.len());
                buf[..k].copy_from_slice(&self.0[..k]);
                self.0 = &self.0[k..];
                Ok(k)
            }
        }
        let a = stage_layer(&ws, Dribble(&tar_bytes, 7777), None, opts).unwrap();
        let b = stage_layer(&ws, Dribble(&tar_bytes, 1 << 20), None, opts).unwrap();
        assert_eq!(a.meta.blob, b.meta.blob);
    }

    #[test]
    fn staging_from_a_dir_packs_hashes_and_moves_it() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let upper = ws.child("upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/x"), b"x").unwrap();
        let opts = PackOptions {
            timestamps: crate::storage::pack::Timestamps::Fixed(0),
        };
        let parent = Digest::of(b"parent");
        let st = stage_layer_from_dir(&ws, &upper, Some(&parent), opts).unwrap();
        assert!(!upper.exists(), "upper dir moved into the staged layer");
        assert_eq!(std::fs::read(st.dir.join("diff/etc/x")).unwrap(), b"x");
        let blob = std::fs::read(&st.blob_path).unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::of(&tar_bytes), st.meta.diff_id);
        assert_eq!(st.meta.size, tar_bytes.len() as u64);
        assert_eq!(st.meta.chain_id, chain_id(Some(&parent), &st.meta.diff_id));
    }
}
