//! Layers: unpacked overlay diff dirs with their metadata, and staging a new layer from a
//! tar stream in one pass (unpack, diff_id, compressed blob and its digest).

use crate::compression;
use crate::digest::{Digest, Hasher};
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

/// Size of the blocks fed to the layer compressor (see [`stage_layer`]).
const COMPRESS_BLOCK: usize = 1 << 20;

/// Copies everything read through it into a channel, for a compressor thread.
struct TeeToChannel<R> {
    inner: R,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    hasher: Hasher,
}

impl<R: Read> Read for TeeToChannel<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            if let Some(tx) = &self.tx {
                if tx.send(buf[..n].to_vec()).is_err() {
                    return Err(io::Error::other("layer compressor stopped"));
                }
            }
        }
        Ok(n)
    }
}

/// Unpack the uncompressed tar stream `tar_stream` into a new layer in `ws`, computing its
/// diff_id and writing its gzip blob at the same time (compression runs on its own thread).
pub fn stage_layer<R: Read>(
    ws: &WorkDir,
    tar_stream: R,
    parent: Option<&Digest>,
    opts: UnpackOptions,
) -> Result<StagedLayer, StoreError> {
    let n = crate::storage::fsutil::random_hex(4);
    let dir = ws.child(&format!("layer-{n}"));
    let diff = dir.join("diff");
    std::fs::create_dir_all(&diff).map_err(|e| StoreError::io(&diff, e))?;
    let blob_path = ws.child(&format!("blob-{n}"));
    let blob_file = File::create(&blob_path).map_err(|e| StoreError::io(&blob_path, e))?;

    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
    let compressor = std::thread::spawn(move || -> io::Result<(Digest, u64)> {
        let hashing =
            crate::digest::HashingWriter::new(BufWriter::with_capacity(1 << 20, blob_file));
        let mut gz = compression::gzip_writer(hashing);
        // The compressor sees fixed-size blocks whatever sizes the unpacker happened to
        // read: deflate output depends on how input is split across writes, and the same
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

    let mut tee = TeeToChannel {
        inner: tar_stream,
        tx: Some(tx),
        hasher: Hasher::new(),
    };
    let unpacked = unpack::unpack_layer(&mut tee, &diff, opts);
    let size = tee.hasher.len();
    let diff_id = std::mem::take(&mut tee.hasher).finish();
    drop(tee.tx.take()); // ends the compressor's loop
    let compressed = compressor
        .join()
        .map_err(|_| StoreError::Corrupt("layer compressor thread panicked".into()))?;
    let stats = unpacked?;
    let (blob, blob_size) = compressed.map_err(|e| StoreError::io(&blob_path, e))?;

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
}
