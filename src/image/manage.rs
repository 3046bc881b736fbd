//! Listing, tagging and removing images.

use crate::image::error::ImageError;
use crate::image::reference::{split_repo_tag, Reference};
use crate::storage::{ImageRecord, Store};

/// One row of the images table (one per name; `<none>` for an untagged image).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRow {
    pub repository: String,
    pub tag: String,
    pub id: String,
    pub created: String,
    pub size: u64,
}

pub const NONE: &str = "<none>";

fn rows_of(img: &ImageRecord) -> Vec<ImageRow> {
    let names: Vec<String> = if img.names.is_empty() {
        vec![NONE.to_string()]
    } else {
        img.names.clone()
    };
    names
        .iter()
        .map(|n| {
            let (repo, tag) = split_repo_tag(n);
            ImageRow {
                repository: repo.to_string(),
                tag: tag.unwrap_or(NONE).to_string(),
                id: img.id.clone(),
                created: img.created.clone(),
                size: img.size,
            }
        })
        .collect()
}

/// List images, newest first. `filter`: `repo:tag` shows that one image's row; `repo` shows
/// the images of that repository or whose ID starts with it (upstream's rules).
pub fn list(store: &Store, filter: Option<&str>) -> Result<Vec<ImageRow>, ImageError> {
    let index = store.index()?;
    let mut images: Vec<&ImageRecord> = index.images.iter().collect();
    images.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let Some(filter) = filter.filter(|f| !f.is_empty()) else {
        return Ok(images.into_iter().flat_map(rows_of).collect());
    };
    if split_repo_tag(filter).1.is_some() {
        let img = index
            .find(filter)
            .map_err(|e| ImageError::Invalid(format!("find local image {filter:?} failed: {e}")))?;
        let rows = rows_of(img);
        let exact: Vec<ImageRow> = rows
            .iter()
            .filter(|r| format!("{}:{}", r.repository, r.tag) == filter)
            .cloned()
            .collect();
        return Ok(if exact.is_empty() { rows } else { exact });
    }
    let out: Vec<ImageRow> = images
        .into_iter()
        .flat_map(rows_of)
        .filter(|r| r.repository == filter || r.id.starts_with(filter))
        .collect();
    if out.is_empty() {
        return Err(ImageError::NoMatch(filter.to_string()));
    }
    Ok(out)
}

/// Give the image `source` (name, ID or ID prefix) the name `target` (`:latest` added when
/// it has no tag). A name held by another image moves to this one.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<String, ImageError> {
    let name = Reference::parse_tagged_name(target)?.to_string();
    let mut tx = store.begin()?;
    let id = tx
        .index
        .find(source)
        .map_err(|e| ImageError::Invalid(format!("find local image {source:?} error: {e}")))?
        .id
        .clone();
    tx.index.add_name(&id, &name);
    tx.commit()?;
    Ok(id)
}

/// One line of `rm` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(String),
    Failed(String),
}

/// What to remove.
#[derive(Debug, Clone)]
pub enum RemoveTarget {
    Images(Vec<String>),
    /// Every image (`rm -a`).
    All,
    /// Every image without a name (`rm -p`).
    Untagged,
}

/// Remove images. A name given on an image with several names only untags that name;
/// otherwise the image goes with all its names. Layers and blobs no other image uses are
/// swept in the same locked section. Returns the events and whether everything succeeded.
pub fn remove(
    store: &Store,
    target: &RemoveTarget,
) -> Result<(Vec<RemoveEvent>, bool), ImageError> {
    let mut tx = store.begin()?;
    let mut events = Vec::new();
    let mut ok = true;
    let args: Vec<String> = match target {
        RemoveTarget::Images(v) => v.clone(),
        RemoveTarget::All => tx.index.images.iter().map(|i| i.id.clone()).collect(),
        RemoveTarget::Untagged => tx
            .index
            .images
            .iter()
            .filter(|i| i.names.is_empty())
            .map(|i| i.id.clone())
            .collect(),
    };
    for arg in &args {
        let img = match tx.index.find(arg) {
            Ok(i) => i.clone(),
            Err(e) => {
                ok = false;
                events.push(RemoveEvent::Failed(format!(
                    "Find local image {arg:?} failed: {e}"
                )));
                continue;
            }
        };
        let named = [crate::storage::index::with_default_tag(arg), arg.clone()];
        if img.names.len() > 1 {
            if let Some(n) = named.iter().find(|n| img.names.contains(n)) {
                tx.index.remove_name(&img.id, n);
                events.push(RemoveEvent::Untagged(n.clone()));
                continue;
            }
        }
        for n in &img.names {
            events.push(RemoveEvent::Untagged(n.clone()));
        }
        tx.index.remove(&img.id);
        events.push(RemoveEvent::Deleted(format!("sha256:{}", img.id)));
    }
    tx.commit()?;
    Ok((events, ok))
}
