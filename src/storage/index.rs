//! The image index: every image record of the store in one file, `images.json`, replaced
//! atomically under the exclusive store lock. One file makes multi-image changes (moving a
//! name from one image to another) atomic.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};

/// Tag added to a name that has none.
pub const DEFAULT_TAG: &str = "latest";

/// One image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image ID: hex of the config blob's sha256.
    pub id: String,
    /// `repository:tag` names, unique across the store.
    #[serde(default)]
    pub names: Vec<String>,
    /// Chain IDs of the layers, base first.
    pub layers: Vec<Digest>,
    /// Digest of the stored manifest blob.
    pub manifest: Digest,
    /// Creation time of the image (RFC 3339, from its config).
    pub created: String,
    /// Sum of the uncompressed layer sizes.
    pub size: u64,
}

impl ImageRecord {
    /// Digest of the config blob.
    pub fn config_digest(&self) -> Result<Digest, crate::digest::InvalidDigest> {
        Digest::from_hex(&self.id)
    }
}

/// The content of `images.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIndex {
    pub version: u32,
    pub images: Vec<ImageRecord>,
}

/// Why a user's image string did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error("image {0:?} not found in local store")]
    NotFound(String),
    #[error(
        "image ID prefix {prefix:?} is ambiguous: it matches {count} images, give more characters"
    )]
    Ambiguous { prefix: String, count: usize },
}

/// `name` with `:latest` added when it has no tag (the tag is what follows the last colon
/// after the last slash).
pub fn with_default_tag(name: &str) -> String {
    let last_slash = name.rfind('/');
    match name.rfind(':') {
        Some(c) if last_slash.is_none_or(|s| c > s) => name.to_string(),
        _ => format!("{name}:{DEFAULT_TAG}"),
    }
}

impl ImageIndex {
    pub const VERSION: u32 = 1;

    /// Check invariants of a freshly read index.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        let mut ids = std::collections::HashSet::new();
        for img in &self.images {
            if !crate::digest::is_sha256_hex(&img.id) {
                return Err(format!("image record with invalid id {:?}", img.id));
            }
            if !ids.insert(img.id.as_str()) {
                return Err(format!("duplicate image record {}", img.id));
            }
            for n in &img.names {
                if !names.insert(n.as_str()) {
                    return Err(format!("name {n:?} is on two images"));
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&ImageRecord> {
        self.images.iter().find(|i| i.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut ImageRecord> {
        self.images.iter_mut().find(|i| i.id == id)
    }

    /// The image holding exactly this name.
    pub fn by_name(&self, name: &str) -> Option<&ImageRecord> {
        self.images
            .iter()
            .find(|i| i.names.iter().any(|n| n == name))
    }

    /// Resolve what a user typed: a name (`name` means `name:latest`), a full ID (optionally
    /// `sha256:`-prefixed) or a unique ID prefix. Names win over ID prefixes, as upstream:
    /// an image named `abc` is found by `abc` even if another image's ID starts with `abc`.
    pub fn find(&self, s: &str) -> Result<&ImageRecord, FindError> {
        if s.is_empty() {
            return Err(FindError::NotFound(s.to_string()));
        }
        if let Some(img) = self
            .by_name(&with_default_tag(s))
            .or_else(|| self.by_name(s))
        {
            return Ok(img);
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let matches: Vec<&ImageRecord> = self
                .images
                .iter()
                .filter(|i| i.id.starts_with(&hex))
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(matches[0]),
                count => {
                    return Err(FindError::Ambiguous {
                        prefix: s.to_string(),
                        count,
                    })
                }
            }
        }
        Err(FindError::NotFound(s.to_string()))
    }

    /// Insert or replace a record. Names it carries are taken away from other images.
    pub fn put(&mut self, rec: ImageRecord) {
        for name in &rec.names {
            for other in self.images.iter_mut().filter(|o| o.id != rec.id) {
                other.names.retain(|n| n != name);
            }
        }
        match self.get_mut(&rec.id) {
            Some(existing) => *existing = rec,
            None => self.images.push(rec),
        }
    }

    /// Give `name` to image `id`, taking it from any other image. Returns false if the image
    /// already had it.
    pub fn add_name(&mut self, id: &str, name: &str) -> bool {
        if self
            .get(id)
            .is_some_and(|i| i.names.iter().any(|n| n == name))
        {
            return false;
        }
        for other in self.images.iter_mut() {
            other.names.retain(|n| n != name);
        }
        if let Some(img) = self.get_mut(id) {
            img.names.push(name.to_string());
        }
        true
    }

    /// Remove one name from image `id`; true if it was there.
    pub fn remove_name(&mut self, id: &str, name: &str) -> bool {
        match self.get_mut(id) {
            Some(img) => {
                let before = img.names.len();
                img.names.retain(|n| n != name);
                before != img.names.len()
            }
            None => false,
        }
    }

    /// Drop the record of image `id`.
    pub fn remove(&mut self, id: &str) -> Option<ImageRecord> {
        let pos = self.images.iter().position(|i| i.id == id)?;
        Some(self.images.remove(pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id_char: char, names: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id_char.to_string().repeat(64),
            names: names.iter().map(|s| s.to_string()).collect(),
            layers: vec![],
            manifest: Digest::of(b"m"),
            created: "2020-01-01T00:00:00Z".into(),
            size: 0,
        }
    }

    #[test]
    fn find_by_name_id_and_prefix() {
        let mut ix = ImageIndex::default();
        ix.put(rec('a', &["busybox:latest"]));
        ix.put(rec('b', &["other:v1"]));
        assert_eq!(ix.find("busybox").unwrap().id, "a".repeat(64));
        assert_eq!(ix.find("busybox:latest").unwrap().id, "a".repeat(64));
        assert_eq!(ix.find("other:v1").unwrap().id, "b".repeat(64));
        assert_eq!(ix.find("bbbb").unwrap().id, "b".repeat(64));
        assert_eq!(
            ix.find(&format!("sha256:{}", "a".repeat(64))).unwrap().id,
            "a".repeat(64)
        );
        assert!(matches!(ix.find("other"), Err(FindError::NotFound(_))));
        assert!(matches!(ix.find("zzz"), Err(FindError::NotFound(_))));
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let mut ix = ImageIndex::default();
        let mut a = rec('a', &[]);
        a.id = format!("ab{}", "0".repeat(62));
        let mut b = rec('a', &[]);
        b.id = format!("ac{}", "0".repeat(62));
        ix.put(a);
        ix.put(b);
        assert!(matches!(
            ix.find("a"),
            Err(FindError::Ambiguous { count: 2, .. })
        ));
        assert!(ix.find("ab").is_ok());
    }

    #[test]
    fn name_wins_over_id_prefix() {
        // Upstream's "image name conflict with image id": an image *named* like another
        // image's ID prefix is found by its name.
        let mut ix = ImageIndex::default();
        ix.put(rec('a', &[]));
        ix.put(rec('b', &["aaaa:latest"]));
        assert_eq!(ix.find("aaaa").unwrap().id, "b".repeat(64));
        assert_eq!(ix.find("aaaaa").unwrap().id, "a".repeat(64));
    }

    #[test]
    fn names_move_between_images() {
        let mut ix = ImageIndex::default();
        ix.put(rec('a', &["x:1"]));
        ix.put(rec('b', &[]));
        assert!(ix.add_name(&"b".repeat(64), "x:1"));
        assert!(ix.get(&"a".repeat(64)).unwrap().names.is_empty());
        assert_eq!(ix.by_name("x:1").unwrap().id, "b".repeat(64));
        ix.put(rec('c', &["x:1"]));
        assert!(ix.get(&"b".repeat(64)).unwrap().names.is_empty());
        assert!(ix.validate().is_ok());
    }

    #[test]
    fn default_tag_rule() {
        assert_eq!(with_default_tag("a"), "a:latest");
        assert_eq!(
            with_default_tag("localhost:5000/a"),
            "localhost:5000/a:latest"
        );
        assert_eq!(with_default_tag("a:v"), "a:v");
    }
}
