//! The container images, as a user's cluster gets them: eso-recovery's built once per test
//! process from the repository's Dockerfile by a real engine (`scripts/build-image.sh`: buildah,
//! no network), and the node's other parts' built FROM scratch the same way; each read back from
//! its OCI archive (config, layers) and, for tests that run an entrypoint without a node,
//! unpacked into a root filesystem cached under target/image by the archive's digest.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
};

use serde_json::Value;

use crate::tools::repo::{repo, script};

/// The built image: its archive, its config and where its root filesystem is unpacked.
pub struct Image {
    /// The OCI archive (`oci-archive:` for buildah, `ctr image import` for containerd).
    pub archive: PathBuf,
    /// The image's name in the archive (`org.opencontainers.image.ref.name`).
    pub reference: String,
    /// The manifest's digest: what a registry serves it by.
    pub digest: String,
    /// The config's digest: the image's ID, as containerd reports it in a pod's `imageID`.
    pub id: String,
    /// The OCI image config (`architecture`, `config.User`, `config.Entrypoint`, `config.Labels`).
    pub config: Value,
    /// Bytes of the layers as pushed (compressed): what a node pulls.
    pub compressed: u64,
    /// The layers' members in the archive, in order.
    layers: Vec<String>,
    rootfs: OnceLock<PathBuf>,
}

impl Image {
    /// The root filesystem, unpacked on first use into target/image/rootfs/<digest> (kept
    /// across runs: the digest names its content).
    pub fn rootfs(&self) -> &Path {
        self.rootfs.get_or_init(|| {
            let rootfs = repo()
                .join("target/image/rootfs")
                .join(self.digest.trim_start_matches("sha256:"));
            if !rootfs.exists() {
                // Unpacked beside it and renamed into place, so a reader never sees half a root.
                let parent = rootfs.parent().unwrap();
                std::fs::create_dir_all(parent).unwrap();
                let partial = tempfile::tempdir_in(parent).unwrap();
                for layer in &self.layers {
                    // tar -xOf ARCHIVE LAYER | tar -xzf - -C PARTIAL
                    let mut member = Command::new("tar")
                        .arg("-xOf")
                        .arg(&self.archive)
                        .arg(layer)
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("running tar");
                    let unpacked = Command::new("tar")
                        .args(["-xzf", "-", "-C"])
                        .arg(partial.path())
                        .stdin(member.stdout.take().unwrap())
                        .status()
                        .expect("running tar");
                    assert!(
                        member.wait().unwrap().success() && unpacked.success(),
                        "unpacking {layer}"
                    );
                }
                // Another test process may have won the race: its copy is the same.
                let _ = std::fs::rename(partial.path(), &rootfs);
            }
            rootfs
        })
    }

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
        let root = self.rootfs();
        walk(root, &mut |p| {
            files.push(format!("/{}", p.strip_prefix(root).unwrap().display()))
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

/// An image of the other parts a node runs (the pause init, ESO, OpenBao, CoreDNS), built FROM
/// scratch by the same engine: `files` (host path, path in the image) run as `user` with
/// `entrypoint`. Cached under target/image by what goes in, so it is built once.
pub fn scratch(name: &str, files: &[(&Path, &str)], user: &str, entrypoint: &[&str]) -> Image {
    let mut dockerfile = String::from("FROM scratch\nCOPY rootfs/ /\n");
    dockerfile.push_str(&format!("USER {user}\n"));
    dockerfile.push_str(&format!(
        "ENTRYPOINT {}\n",
        serde_json::to_string(entrypoint).unwrap()
    ));
    // What goes in: the Dockerfile and each file's path, size and mtime.
    let mut key = dockerfile.clone();
    for (from, to) in files {
        let meta = std::fs::metadata(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        key.push_str(&format!(
            "{} {to} {} {:?}\n",
            from.display(),
            meta.len(),
            meta.modified().ok()
        ));
    }
    let digest = {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    };
    let archive = repo().join(format!("target/image/{name}-{digest}.oci.tar"));
    if !archive.exists() {
        let ctx = tempfile::tempdir_in(repo().join("target")).unwrap();
        for (from, to) in files {
            let at = ctx.path().join("rootfs").join(to.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::copy(from, &at).unwrap();
        }
        std::fs::write(ctx.path().join("Dockerfile"), &dockerfile).unwrap();
        let partial = archive.with_extension("partial");
        let status = Command::new(repo().join("scripts/oci-build.sh"))
            .arg(ctx.path())
            .arg(format!("localhost/{name}:{digest}"))
            .arg(&partial)
            .status()
            .expect("running scripts/oci-build.sh");
        assert!(status.success(), "building the {name} image");
        std::fs::rename(&partial, &archive).unwrap();
    }
    read(&archive)
}

/// A multi-arch archive (`scripts/build-image.sh amd64 arm64`): the index's digest and each
/// platform's image, in the index's order.
pub fn platforms(archive: &Path) -> (String, Vec<Image>) {
    let (digest, reference) = top(archive);
    let index = member_json(archive, &blob(&digest));
    let images = index["manifests"]
        .as_array()
        .expect("an image index")
        .iter()
        .map(|m| image(archive, m["digest"].as_str().unwrap(), &reference))
        .collect();
    (digest, images)
}

/// The archive's one entry: its digest and `org.opencontainers.image.ref.name`.
fn top(archive: &Path) -> (String, String) {
    let index = member_json(archive, "index.json");
    let entry = &index["manifests"][0];
    let digest = entry["digest"].as_str().expect("a manifest").to_string();
    let reference = entry["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (digest, reference)
}

fn member_json(archive: &Path, member: &str) -> Value {
    serde_json::from_slice(&extract(archive, member))
        .unwrap_or_else(|e| panic!("{member} in {}: {e}", archive.display()))
}

fn blob(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn read(archive: &Path) -> Image {
    let (digest, reference) = top(archive);
    image(archive, &digest, &reference)
}

fn image(archive: &Path, digest: &str, reference: &str) -> Image {
    let json = |member: &str| member_json(archive, member);
    let digest = digest.to_string();
    let reference = reference.to_string();
    let manifest = json(&blob(&digest));
    let id = manifest["config"]["digest"].as_str().unwrap().to_string();
    let config = json(&blob(&id));
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    Image {
        archive: archive.to_path_buf(),
        reference,
        digest,
        id,
        config,
        compressed: layers.iter().filter_map(|l| l["size"].as_u64()).sum(),
        layers: layers
            .iter()
            .map(|l| blob(l["digest"].as_str().unwrap()))
            .collect(),
        rootfs: OnceLock::new(),
    }
}

/// One member of a tar archive.
fn extract(archive: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("running tar");
    assert!(out.status.success(), "no {member} in {}", archive.display());
    out.stdout
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
