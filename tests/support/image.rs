//! The container image as a user's cluster gets it: built once per test process from the
//! repository's Dockerfile by a real engine (`scripts/build-image.sh`: buildah, no network), read
//! back from its OCI archive (config, layers), and unpacked into a root filesystem cached under
//! target/image by the archive's digest, for tests that run the image's entrypoint without a node.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

use super::controlplane::{repo, script};

/// The built image: its archive, its config and where its root filesystem is unpacked.
pub struct Image {
    /// The OCI archive (`oci-archive:` for buildah, `ctr image import` for containerd).
    pub archive: PathBuf,
    /// The image's name in the archive (`org.opencontainers.image.ref.name`).
    pub reference: String,
    /// The manifest's digest: what a pod's `imageID` shows.
    pub digest: String,
    /// The OCI image config (`architecture`, `config.User`, `config.Entrypoint`, `config.Labels`).
    pub config: Value,
    /// Bytes of the layers as pushed (compressed): what a node pulls.
    pub compressed: u64,
    /// The unpacked root filesystem.
    pub rootfs: PathBuf,
}

impl Image {
    /// `USER uid:gid` as numbers.
    pub fn user(&self) -> (u32, u32) {
        let user = self.config["config"]["User"].as_str().unwrap_or_default();
        let (uid, gid) = user.split_once(':').unwrap_or((user, user));
        (
            uid.parse().expect("a numeric image user"),
            gid.parse().expect("a numeric image group"),
        )
    }

    /// The entrypoint, as the runtime runs it.
    pub fn entrypoint(&self) -> Vec<String> {
        serde_json::from_value(self.config["config"]["Entrypoint"].clone())
            .expect("an image entrypoint")
    }

    /// Every regular file in the root filesystem (paths inside the image).
    pub fn files(&self) -> Vec<String> {
        let mut files = Vec::new();
        walk(&self.rootfs, &mut |p| {
            files.push(format!(
                "/{}",
                p.strip_prefix(&self.rootfs).unwrap().display()
            ))
        });
        files.sort();
        files
    }
}

/// The image, built and unpacked once per test process.
pub fn built() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| read(&script("scripts/build-image.sh")))
}

fn read(archive: &Path) -> Image {
    let layout = tempfile::tempdir().unwrap();
    tar(&["-xf", &archive.display().to_string()], layout.path());
    let blob = |digest: &str| {
        layout
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json = |path: PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let index = json(layout.path().join("index.json"));
    let entry = &index["manifests"][0];
    let digest = entry["digest"].as_str().expect("a manifest").to_string();
    let reference = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let manifest = json(blob(&digest));
    let config = json(blob(manifest["config"]["digest"].as_str().unwrap()));
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let compressed = layers.iter().filter_map(|l| l["size"].as_u64()).sum();

    let rootfs = repo()
        .join("target/image/rootfs")
        .join(digest.trim_start_matches("sha256:"));
    if !rootfs.exists() {
        // Unpacked beside it and renamed into place, so a reader never sees half a root.
        let parent = rootfs.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let partial = tempfile::tempdir_in(parent).unwrap();
        for layer in &layers {
            let path = blob(layer["digest"].as_str().unwrap());
            tar(&["-xzf", &path.display().to_string()], partial.path());
        }
        // Another test process may have won the race: its copy is the same.
        let _ = std::fs::rename(partial.path(), &rootfs);
    }
    Image {
        archive: archive.to_path_buf(),
        reference,
        digest,
        config,
        compressed,
        rootfs,
    }
}

fn tar(args: &[&str], dir: &Path) {
    let status = Command::new("tar")
        .args(args)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("running tar");
    assert!(status.success(), "tar {args:?} failed");
}

fn walk(dir: &Path, found: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), found),
            Ok(t) if t.is_file() => found(&entry.path()),
            _ => {}
        }
    }
}

/// Bytes of every file under `root`.
pub fn size(root: &Path) -> u64 {
    let mut bytes = 0;
    walk(root, &mut |p| {
        bytes += std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    });
    bytes
}
