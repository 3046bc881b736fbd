//! Layers: unpacked overlay diff dirs with their metadata, and staging a new layer in one
//! pass: from a tar stream (unpack, diff_id, the tar kept as the layer's blob), from a
//! registry blob (kept as received, unpacked through its decompressor) or from a diff dir
//! (packed into the blob, never unpacked).
//!
//! Nothing here compresses: a layer created or loaded here is stored as its uncompressed
//! tar (`blob == diff_id`), and is gzip-compressed only when pushed (see
//! [`LayerMeta::gzip`]). Staging writes but does not sync: callers sync what they publish
//! ([`StagedLayer::sync`], or one `syncfs` of the work dir for diff dirs) before publishing
//! (see [`crate::storage::Transaction`]).

use crate::compression::{self, Compression};
use crate::digest::{Digest, Hasher};
use crate::storage::fsutil::{self, Flusher};
use crate::storage::pack::{self, PackOptions};
use crate::storage::unpack::{self, UnpackOptions, UnpackStats};
use crate::storage::workspace::WorkDir;
use crate::storage::StoreError;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Media type of an uncompressed layer blob (Docker's name; OCI's is
/// [`MEDIA_TYPE_OCI_LAYER_TAR`]).
pub const MEDIA_TYPE_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Media type of a gzip layer blob (Docker).
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_TYPE_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The compression a layer media type names (`None` for an unknown type, which is then
/// treated by its content).
pub fn media_type_compression(media_type: &str) -> Option<Compression> {
    if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
        Some(Compression::Gzip)
    } else if media_type.ends_with("+zstd") {
        Some(Compression::Zstd)
    } else if media_type.ends_with(".tar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// The layer media type for `c` in an OCI or a Docker manifest (Docker has no zstd type:
/// such layers keep the OCI one, as everyone does).
pub fn layer_media_type(oci: bool, c: Compression) -> &'static str {
    match (oci, c) {
        (false, Compression::None) => MEDIA_TYPE_LAYER_TAR,
        (true, Compression::None) => MEDIA_TYPE_OCI_LAYER_TAR,
        (false, Compression::Gzip) => MEDIA_TYPE_LAYER_GZIP,
        (true, Compression::Gzip) => MEDIA_TYPE_OCI_LAYER_GZIP,
        (_, _) => MEDIA_TYPE_OCI_LAYER_ZSTD,
    }
}

/// A compressed form of a layer that is not kept in `blobs/`: what a registry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedBlob {
    pub digest: Digest,
    pub size: u64,
}

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
    /// The blob of this layer in `blobs/`: the uncompressed tar (`blob == diff_id`) for
    /// layers built, imported or loaded from a plain tar; the blob exactly as received for
    /// layers pulled (or loaded) compressed.
    pub blob: Digest,
    pub blob_size: u64,
    /// Media type of `blob` (its compression: [`LayerMeta::compression`]).
    pub media_type: String,
    /// For an uncompressed blob: digest and size of its gzip form (the pinned
    /// [`compression::gzip_blocks`] encoding), recorded by the first push so later pushes
    /// can skip or mount it without compressing again. Absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<CompressedBlob>,
}

impl LayerMeta {
    /// How `blob` is compressed, from its media type.
    pub fn compression(&self) -> Compression {
        media_type_compression(&self.media_type).unwrap_or(if self.blob == self.diff_id {
            Compression::None
        } else {
            Compression::Gzip
        })
    }

    /// True when `blob` is the uncompressed tar.
    pub fn is_uncompressed(&self) -> bool {
        self.compression() == Compression::None
    }
}

/// Chain ID of a layer with `diff_id` on top of `parent` (OCI image spec).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A layer unpacked in a work dir, ready to publish (after the work dir is synced).
#[derive(Debug)]
pub struct StagedLayer {
    /// `<workdir>/layer-N/` holding `diff/` and `meta.json`.
    pub dir: PathBuf,
    /// The blob file in the work dir.
    pub blob_path: PathBuf,
    pub meta: LayerMeta,
    pub stats: UnpackStats,
}

impl StagedLayer {
    /// Make this staged layer durable by itself: fsync its blob, its `meta.json` and its
    /// dir, instead of a `syncfs` that would also wait for every other process's dirty data
    /// on the filesystem. A layer with an unpacked `diff/` (a build's) is synced with
    /// `syncfs`, which covers its many files in one call.
    pub fn sync(&self) -> Result<(), StoreError> {
        let diff = self.dir.join("diff");
        if diff.exists() {
            return fsutil::syncfs(&self.dir).map_err(|e| StoreError::io(&self.dir, e));
        }
        for f in [self.blob_path.clone(), self.dir.join("meta.json")] {
            File::open(&f)
                .and_then(|h| h.sync_all())
                .map_err(|e| StoreError::io(&f, e))?;
        }
        fsutil::fsync_dir(&self.dir).map_err(|e| StoreError::io(&self.dir, e))
    }
}

/// Bytes handed to the blob writer thread at once.
const CHUNK: usize = 1 << 20;

/// Written bytes between two early-writeback kicks (see [`Flusher`]).
const FLUSH_EVERY: u64 = 128 << 20;

/// Hashes and writes the uncompressed layer tar to its blob file as a pipeline: the producer
/// (the checker or the packer) fills 1 MiB chunks, a hashing thread hashes each (that hash
/// is both the diff_id and the blob digest) and hands it to a writing thread, which writes
/// it and returns the buffer for reuse. SHA-256 is the slowest stage (about 1.1 GB/s with
/// SHA-NI here, below what a page-cache write or a tar scan costs), so it gets a core to
/// itself. Every [`FLUSH_EVERY`] written bytes the writer kicks `flusher`, so the work
/// dir's data goes to disk while more is produced and the caller's final `syncfs` has
/// little left to do.
struct BlobWriter {
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    free: mpsc::Receiver<Vec<u8>>,
    hasher: std::thread::JoinHandle<(Digest, u64)>,
    writer: std::thread::JoinHandle<io::Result<()>>,
    buf: Vec<u8>,
}

/// Chunks queued between two pipeline stages.
const QUEUE: usize = 4;

impl BlobWriter {
    fn start(mut blob_file: File, flusher: Flusher) -> BlobWriter {
        let (tx, to_hash) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (hashed, to_write) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (give_back, free) = mpsc::channel::<Vec<u8>>();
        let hasher = std::thread::spawn(move || {
            let mut hasher = Hasher::new();
            for chunk in to_hash {
                hasher.update(&chunk);
                if hashed.send(chunk).is_err() {
                    break; // the writer failed: its error is the one reported
                }
            }
            let len = hasher.len();
            (hasher.finish(), len)
        });
        let writer = std::thread::spawn(move || -> io::Result<()> {
            let (mut written, mut next_kick) = (0u64, FLUSH_EVERY);
            for mut chunk in to_write {
                blob_file.write_all(&chunk)?;
                written += chunk.len() as u64;
                if written >= next_kick {
                    flusher.kick();
                    next_kick = written + FLUSH_EVERY;
                }
                chunk.clear();
                let _ = give_back.send(chunk);
            }
            Ok(())
        });
        BlobWriter {
            tx: Some(tx),
            free,
            hasher,
            writer,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        match &self.tx {
            Some(tx) => tx
                .send(chunk)
                .map_err(|_| io::Error::other("layer blob writer stopped")),
            None => Err(io::Error::other("layer blob writer finished")),
        }
    }

    fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() >= CHUNK {
                self.send()?;
            }
        }
        Ok(())
    }

    /// Flush what is buffered and wait for both threads: the blob's digest and size.
    fn finish(mut self) -> Result<io::Result<(Digest, u64)>, StoreError> {
        let sent = self.send();
        drop(self.tx.take());
        let panicked = || StoreError::Corrupt("layer blob writer thread panicked".into());
        let hashed = self.hasher.join().map_err(|_| panicked())?;
        let written = self.writer.join().map_err(|_| panicked())?;
        // A write error explains a failed send; report it first.
        Ok(written.and(sent).map(|()| hashed))
    }
}

/// Feeds everything the unpacker reads to the blob writer (unpack path).
struct TeeReader<'a, R> {
    inner: R,
    blob: &'a mut BlobWriter,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.blob.push(&buf[..n])?;
        Ok(n)
    }
}

/// The same as a writer (pack path).
struct TeeWriter<'a> {
    blob: &'a mut BlobWriter,
}

impl Write for TeeWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.blob.push(data)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A new layer dir in `ws` and the path its blob will have: `(layer dir, blob path)`.
fn new_layer_dir(ws: &WorkDir) -> Result<(PathBuf, PathBuf), StoreError> {
    let n = crate::storage::fsutil::random_hex(4);
    let (dir, blob_path) = (
        ws.child(&format!("layer-{n}")),
        ws.child(&format!("blob-{n}")),
    );
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    Ok((dir, blob_path))
}

/// A new layer dir and blob file in `ws`: `(layer dir, blob path, open blob file)`.
fn new_layer(ws: &WorkDir) -> Result<(PathBuf, PathBuf, File), StoreError> {
    let (dir, blob_path) = new_layer_dir(ws)?;
    let blob_file = File::create(&blob_path).map_err(|e| StoreError::io(&blob_path, e))?;
    Ok((dir, blob_path, blob_file))
}

/// Finish staging a layer whose blob is its uncompressed tar: write its meta.
fn staged_tar_layer(
    dir: PathBuf,
    blob_path: PathBuf,
    parent: Option<&Digest>,
    (diff_id, size): (Digest, u64),
    stats: UnpackStats,
) -> Result<StagedLayer, StoreError> {
    finish_layer(dir, blob_path, tar_meta(parent, diff_id, size), stats)
}

/// Write `meta` into the staged layer's dir: the layer is staged.
fn finish_layer(
    dir: PathBuf,
    blob_path: PathBuf,
    meta: LayerMeta,
    stats: UnpackStats,
) -> Result<StagedLayer, StoreError> {
    write_meta(&dir, &meta)?;
    Ok(StagedLayer {
        dir,
        blob_path,
        meta,
        stats,
    })
}

/// Write `meta` as `<layer dir>/meta.json` (not synced: see the module doc).
pub fn write_meta(layer_dir: &Path, meta: &LayerMeta) -> Result<(), StoreError> {
    let meta_path = layer_dir.join("meta.json");
    let bytes = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    std::fs::write(&meta_path, bytes).map_err(|e| StoreError::io(&meta_path, e))
}

/// Meta of an uncompressed layer whose tar hashes to `diff_id`.
fn tar_meta(parent: Option<&Digest>, diff_id: Digest, size: u64) -> LayerMeta {
    LayerMeta {
        chain_id: chain_id(parent, &diff_id),
        blob: diff_id.clone(),
        diff_id,
        parent: parent.cloned(),
        size,
        blob_size: size,
        media_type: MEDIA_TYPE_LAYER_TAR.to_string(),
        gzip: None,
    }
}

/// Stage a new layer in `ws` from the uncompressed tar stream `tar_stream`: the bytes become
/// the layer's blob (hashed for the diff_id on its own thread) while every entry is checked
/// as unpacking would check it ([`unpack::check_layer`]). Nothing is unpacked: the layer
/// gets its `diff/` dir on first use ([`crate::storage::Store::unpacked_layer`]).
pub fn stage_layer<R: Read>(
    ws: &WorkDir,
    tar_stream: R,
    parent: Option<&Digest>,
    opts: UnpackOptions,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path, blob_file) = new_layer(ws)?;
    let mut blob = BlobWriter::start(blob_file, Flusher::start(ws.path()));
    let checked = {
        // The checker reads in small pieces; one large read per MiB from the source.
        let tee = TeeReader {
            inner: tar_stream,
            blob: &mut blob,
        };
        unpack::check_layer(io::BufReader::with_capacity(CHUNK, tee), opts)
    };
    // A failed write (a full disk) also stops the checker: report the write error first.
    let hashed = blob.finish()?.map_err(|e| StoreError::io(&blob_path, e))?;
    let stats = checked?;
    staged_tar_layer(dir, blob_path, parent, hashed, stats)
}

/// Where the bytes of a received blob go while it is staged.
enum BlobOut {
    /// Written to the layer's new blob file.
    File(BufWriter<File>),
    /// Already on disk: the caller writes them as they stream (see
    /// [`stage_layer_from_received`]); here they are only hashed.
    Elsewhere,
}

impl Write for BlobOut {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            BlobOut::File(f) => f.write(data),
            BlobOut::Elsewhere => Ok(data.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            BlobOut::File(f) => f.flush(),
            BlobOut::Elsewhere => Ok(()),
        }
    }
}

/// Copies every byte read from the blob stream to the blob's [`BlobOut`] (hashing it), so
/// a layer received compressed is stored as received.
struct BlobTee<R> {
    inner: R,
    out: crate::digest::HashingWriter<BlobOut>,
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
/// computed while it streams; the decompressed tar is checked entry by entry (as in
/// [`stage_layer`]; nothing is unpacked) and its diff_id computed in the same pass.
/// `media_type` is recorded in the layer's meta. The caller compares `meta.blob` with the
/// digest it expected before publishing.
pub fn stage_layer_from_blob<R: Read>(
    ws: &WorkDir,
    blob_stream: R,
    media_type: &str,
    parent: Option<&Digest>,
    opts: UnpackOptions,
) -> Result<StagedLayer, StoreError> {
    stage_layer_from_blob_guarded(ws, blob_stream, media_type, parent, opts, &mut |_| Ok(()))
}

/// [`stage_layer_from_blob`] for a blob the caller writes to the file `received` itself as
/// it streams (a download cache entry): once `blob_stream` has been read to its end,
/// `received` must hold exactly the bytes read. They are hashed here, not written again;
/// the file then becomes the layer's blob by a hard link (a copy across filesystems).
pub fn stage_layer_from_received<R: Read>(
    ws: &WorkDir,
    blob_stream: R,
    media_type: &str,
    parent: Option<&Digest>,
    opts: UnpackOptions,
    received: &Path,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path) = new_layer_dir(ws)?;
    let target = BlobTarget {
        dir,
        blob_path,
        out: BlobOut::Elsewhere,
    };
    let st = stage_blob_into(target, blob_stream, media_type, parent, opts, &mut |_| {
        Ok(())
    })?;
    if std::fs::hard_link(received, &st.blob_path).is_err() {
        std::fs::copy(received, &st.blob_path).map_err(|e| StoreError::io(&st.blob_path, e))?;
    }
    let len = std::fs::metadata(&st.blob_path)
        .map_err(|e| StoreError::io(&st.blob_path, e))?
        .len();
    if len != st.meta.blob_size {
        return Err(StoreError::Corrupt(format!(
            "{}: holds {len} bytes, {} were received",
            received.display(),
            st.meta.blob_size
        )));
    }
    Ok(st)
}

/// Reports the decompressed bytes read so far to a guard that may stop the stream.
struct Watched<'g, R> {
    inner: R,
    out: u64,
    guard: &'g mut dyn FnMut(u64) -> io::Result<()>,
}

impl<R: Read> Read for Watched<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        (self.guard)(self.out)?;
        Ok(n)
    }
}

/// [`stage_layer_from_blob`], calling `guard` with the number of decompressed bytes after
/// every read: an error it returns stops the staging (size limits, decompression bombs).
pub fn stage_layer_from_blob_guarded<R: Read>(
    ws: &WorkDir,
    blob_stream: R,
    media_type: &str,
    parent: Option<&Digest>,
    opts: UnpackOptions,
    guard: &mut dyn FnMut(u64) -> io::Result<()>,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path, blob_file) = new_layer(ws)?;
    let target = BlobTarget {
        dir,
        blob_path,
        out: BlobOut::File(BufWriter::with_capacity(1 << 20, blob_file)),
    };
    stage_blob_into(target, blob_stream, media_type, parent, opts, guard)
}

/// A new layer dir, where its blob is, and where the blob's bytes go while staging.
struct BlobTarget {
    dir: PathBuf,
    blob_path: PathBuf,
    out: BlobOut,
}

fn stage_blob_into<R: Read>(
    target: BlobTarget,
    blob_stream: R,
    media_type: &str,
    parent: Option<&Digest>,
    opts: UnpackOptions,
    guard: &mut dyn FnMut(u64) -> io::Result<()>,
) -> Result<StagedLayer, StoreError> {
    let BlobTarget {
        dir,
        blob_path,
        out,
    } = target;
    let mut tee = BlobTee {
        inner: blob_stream,
        out: crate::digest::HashingWriter::new(out),
    };
    let (diff_id, size, stats) = {
        let (_kind, tar_stream) =
            compression::decompress(&mut tee).map_err(|e| StoreError::io(&blob_path, e))?;
        let watched = Watched {
            inner: tar_stream,
            out: 0,
            guard,
        };
        let mut hashing = crate::digest::HashingReader::new(watched);
        let stats = unpack::check_layer(&mut hashing, opts)?;
        let (diff_id, size, _) = hashing.finish();
        (diff_id, size, stats)
    };
    // Whatever follows the compressed stream still belongs to the blob and its digest.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| StoreError::io(&blob_path, e))?;
    let (blob, blob_size, out) = tee.out.finish();
    if let BlobOut::File(w) = out {
        w.into_inner()
            .map_err(|e| StoreError::io(&blob_path, e.into_error()))?;
    }
    let meta = LayerMeta {
        chain_id: chain_id(parent, &diff_id),
        diff_id,
        parent: parent.cloned(),
        size,
        blob,
        blob_size,
        media_type: media_type.to_string(),
        gzip: None,
    };
    finish_layer(dir, blob_path, meta, stats)
}

/// Turn the diff dir `src` (inside `ws`, e.g. a RUN's overlay upper dir) into a staged layer:
/// pack it to a deterministic tar — the layer's blob, hashed for the diff_id on its own
/// thread — then move the dir into place as the layer's unpacked form (no unpacking).
pub fn stage_layer_from_dir(
    ws: &WorkDir,
    src: &Path,
    parent: Option<&Digest>,
    opts: PackOptions,
) -> Result<StagedLayer, StoreError> {
    let (dir, blob_path, blob_file) = new_layer(ws)?;
    // The diff dir is complete: its data can go to disk while it is packed.
    let flusher = Flusher::start(ws.path());
    flusher.kick();
    let mut blob = BlobWriter::start(blob_file, flusher);
    let packed = pack::pack_dir(src, TeeWriter { blob: &mut blob }, opts);
    let hashed = blob.finish()?.map_err(|e| StoreError::io(&blob_path, e))?;
    let entries = packed.map_err(|e| StoreError::Corrupt(format!("packing layer: {e}")))?;
    let diff = dir.join("diff");
    std::fs::rename(src, &diff).map_err(|e| StoreError::io(&diff, e))?;
    let stats = UnpackStats {
        entries,
        file_bytes: 0,
    };
    staged_tar_layer(dir, blob_path, parent, hashed, stats)
}

/// Unpack the stored blob of the layer `meta` (`blob`, opened) into the empty directory
/// `dest`, in overlay diff form, decompressing as its content says and checking that the
/// tar still hashes to the layer's diff_id (a blob damaged on disk is refused, not used).
pub fn unpack_blob(blob: File, meta: &LayerMeta, dest: &Path) -> Result<UnpackStats, StoreError> {
    let opts = UnpackOptions {
        allow_devices: true,
        whiteouts: true,
    };
    let reader = io::BufReader::with_capacity(1 << 20, blob);
    let (_kind, tar_stream) = compression::decompress(reader)
        .map_err(|e| StoreError::Corrupt(format!("layer {}: {e}", meta.chain_id)))?;
    let mut hashing = crate::digest::HashingReader::new(tar_stream);
    let stats = unpack::unpack_layer(&mut hashing, dest, opts)?;
    let (diff_id, _, _) = hashing.finish();
    if diff_id != meta.diff_id {
        return Err(StoreError::Corrupt(format!(
            "layer {}: its stored blob no longer matches diff_id {} (got {diff_id}); remove the images using it and load or pull them again",
            meta.chain_id, meta.diff_id
        )));
    }
    Ok(stats)
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

    fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_id(None, &a), a);
        let expect = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(Some(&a), &b), expect);
    }

    /// A work dir and a one-file layer `f` = "abc" staged in it.
    fn staged_abc() -> (tempfile::TempDir, WorkDir, Vec<u8>, StagedLayer) {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let data = one_file_tar("f", b"abc");
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: false,
        };
        let st = stage_layer(&ws, &data[..], None, opts).unwrap();
        (t, ws, data, st)
    }

    #[test]
    fn staging_keeps_the_tar_as_the_blob() {
        let (_t, ws, data, st) = staged_abc();
        assert_eq!(st.meta.diff_id, Digest::of(&data));
        assert_eq!(st.meta.blob, st.meta.diff_id);
        assert_eq!(st.meta.size, data.len() as u64);
        assert_eq!(st.meta.blob_size, data.len() as u64);
        assert_eq!(st.meta.media_type, MEDIA_TYPE_LAYER_TAR);
        assert!(st.meta.is_uncompressed());
        assert_eq!(std::fs::read(&st.blob_path).unwrap(), data);
        assert!(!st.dir.join("diff").exists(), "staging does not unpack");
        assert_eq!(read_meta(&st.dir).unwrap(), st.meta);
        let diff = unpack_staged(&ws, &st);
        assert_eq!(std::fs::read(diff.join("f")).unwrap(), b"abc");
    }

    /// Unpack a staged layer's blob as first use does.
    fn unpack_staged(ws: &WorkDir, st: &StagedLayer) -> PathBuf {
        let dest = ws.child(&format!(
            "unpacked-{}",
            crate::storage::fsutil::random_hex(4)
        ));
        std::fs::create_dir(&dest).unwrap();
        unpack_blob(File::open(&st.blob_path).unwrap(), &st.meta, &dest).unwrap();
        dest
    }

    #[test]
    fn a_blob_damaged_on_disk_is_not_unpacked() {
        let (_t, ws, _data, st) = staged_abc();
        let mut bytes = std::fs::read(&st.blob_path).unwrap();
        bytes[512] = b'x'; // the file's content: still a valid tar
        std::fs::write(&st.blob_path, &bytes).unwrap();
        let dest = ws.child("d");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack_blob(File::open(&st.blob_path).unwrap(), &st.meta, &dest).unwrap_err();
        assert!(
            err.to_string().contains("no longer matches diff_id"),
            "{err}"
        );
    }

    #[test]
    fn large_layers_cross_the_writer_thread_intact() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let data = one_file_tar("big", &big);
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
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: false,
        };
        let st = stage_layer(&ws, Dribble(&data, 7777), None, opts).unwrap();
        assert_eq!(st.meta.diff_id, Digest::of(&data));
        assert_eq!(std::fs::read(&st.blob_path).unwrap(), data);
        assert_eq!(
            std::fs::read(unpack_staged(&ws, &st).join("big")).unwrap(),
            big
        );
    }

    #[test]
    fn a_blob_write_error_is_reported_not_lost() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("ro");
        std::fs::write(&path, b"").unwrap();
        // A file opened read-only: every write fails.
        let mut w = BlobWriter::start(File::open(&path).unwrap(), Flusher::start(t.path()));
        let data = vec![7u8; 3 * CHUNK + 5];
        let pushed = w.push(&data);
        let res = w.finish().unwrap();
        assert!(pushed.is_err() || res.is_err());
        let err = res.unwrap_err();
        assert_ne!(
            err.to_string(),
            "layer blob writer stopped",
            "the write error itself"
        );
    }

    #[test]
    fn the_blob_pipeline_hashes_and_writes_every_byte_in_order() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("blob");
        let mut w = BlobWriter::start(File::create(&path).unwrap(), Flusher::start(t.path()));
        let data: Vec<u8> = (0..(5 * CHUNK + 123)).map(|i| (i % 253) as u8).collect();
        for piece in data.chunks(CHUNK / 3 + 17) {
            w.push(piece).unwrap();
        }
        let (digest, len) = w.finish().unwrap().unwrap();
        assert_eq!((digest, len), (Digest::of(&data), data.len() as u64));
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_failed_unpack_fails_the_staging() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: false,
        };
        let garbage = vec![0x42u8; 4096];
        assert!(stage_layer(&ws, &garbage[..], None, opts).is_err());
    }

    #[test]
    fn staging_from_a_blob_keeps_the_blob() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let data = one_file_tar("f", b"abc");
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
        assert_eq!(st.meta.compression(), Compression::Gzip);
        assert_eq!(std::fs::read(&st.blob_path).unwrap(), blob);
        assert!(!st.dir.join("diff").exists(), "staging does not unpack");
        assert_eq!(
            std::fs::read(unpack_staged(&ws, &st).join("f")).unwrap(),
            b"abc"
        );
    }

    #[test]
    fn a_guard_can_stop_a_blob_that_expands_too_much() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let data = one_file_tar("f", &vec![0u8; 1 << 20]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&data).unwrap();
        let blob = gz.finish().unwrap();
        let opts = UnpackOptions {
            allow_devices: false,
            whiteouts: true,
        };
        let mut guard = |out: u64| {
            if out > 100_000 {
                Err(io::Error::other("too big"))
            } else {
                Ok(())
            }
        };
        let err = stage_layer_from_blob_guarded(
            &ws,
            &blob[..],
            MEDIA_TYPE_LAYER_GZIP,
            None,
            opts,
            &mut guard,
        )
        .unwrap_err();
        assert!(err.to_string().contains("too big"), "{err}");
    }

    #[test]
    fn staging_from_a_dir_packs_hashes_and_moves_it() {
        let t = tempfile::tempdir().unwrap();
        let ws = WorkDir::create(t.path(), "t").unwrap();
        let upper = ws.child("upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/x"), b"x").unwrap();
        let big: Vec<u8> = (0..3_000_001u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(upper.join("big"), &big).unwrap();
        let opts = PackOptions {
            timestamps: crate::storage::pack::Timestamps::Fixed(0),
        };
        let parent = Digest::of(b"parent");
        let st = stage_layer_from_dir(&ws, &upper, Some(&parent), opts).unwrap();
        assert!(!upper.exists(), "upper dir moved into the staged layer");
        assert_eq!(std::fs::read(st.dir.join("diff/etc/x")).unwrap(), b"x");
        let tar_bytes = std::fs::read(&st.blob_path).unwrap();
        assert_eq!(Digest::of(&tar_bytes), st.meta.diff_id);
        assert_eq!(st.meta.blob, st.meta.diff_id);
        assert_eq!(st.meta.size, tar_bytes.len() as u64);
        assert_eq!(st.meta.chain_id, chain_id(Some(&parent), &st.meta.diff_id));
        let mut ar = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            if name == "big" {
                assert_eq!(content, big);
            }
            seen.push(name);
        }
        assert_eq!(seen, vec!["big", "etc/", "etc/x"]);
    }

    #[test]
    fn media_types_name_their_compression() {
        assert_eq!(
            media_type_compression(MEDIA_TYPE_LAYER_TAR),
            Some(Compression::None)
        );
        assert_eq!(
            media_type_compression(MEDIA_TYPE_OCI_LAYER_TAR),
            Some(Compression::None)
        );
        assert_eq!(
            media_type_compression(MEDIA_TYPE_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            media_type_compression(MEDIA_TYPE_OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            for oci in [false, true] {
                assert_eq!(media_type_compression(layer_media_type(oci, c)), Some(c));
            }
        }
    }

    #[test]
    fn old_metas_without_a_gzip_record_still_read() {
        let d = Digest::of(b"x");
        let json = format!(
            r#"{{"chain_id":"{d}","diff_id":"{d}","parent":null,"size":1,"blob":"{d}","blob_size":1,"media_type":"{MEDIA_TYPE_LAYER_GZIP}"}}"#
        );
        let m: LayerMeta = serde_json::from_str(&json).unwrap();
        assert_eq!(m.gzip, None);
        assert_eq!(m.compression(), Compression::Gzip);
        let back = serde_json::to_string(&m).unwrap();
        assert!(!back.contains("\"gzip\":"), "{back}");
    }
}
