//! The container image without a container engine: the binary built as the Dockerfile builds it
//! (`scripts/build-static.sh`, which the Dockerfile runs), laid into a root filesystem shaped
//! like the runtime stage's (distroless/static: users, NSS config, CA bundle, nothing else), at
//! the path, user and entrypoint the Dockerfile names — read from the Dockerfile itself.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use super::controlplane::{repo, script};

/// What the Dockerfile's runtime stage says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStage {
    /// `FROM` of the last stage.
    pub base: String,
    /// Where `COPY --from=build` puts the binary.
    pub binary: String,
    /// `USER uid:gid`.
    pub uid: u32,
    /// The group.
    pub gid: u32,
    /// `ENTRYPOINT [...]`.
    pub entrypoint: Vec<String>,
}

/// Reads the last stage of the Dockerfile.
pub fn runtime_stage() -> RuntimeStage {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("reading the Dockerfile");
    let last = text
        .rsplit_once("\nFROM ")
        .map(|(_, s)| s)
        .expect("a second FROM");
    let line = |word: &str| {
        last.lines()
            .find_map(|l| l.strip_prefix(word))
            .unwrap_or_else(|| panic!("the runtime stage has no {word}"))
            .trim()
            .to_string()
    };
    let base = last.lines().next().unwrap_or_default().trim().to_string();
    let copy = line("COPY --from=build ");
    let binary = copy
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string();
    let user = line("USER ");
    let (uid, gid) = user.split_once(':').unwrap_or((&user, &user));
    let entrypoint: Vec<String> =
        serde_json::from_str(&line("ENTRYPOINT ")).expect("ENTRYPOINT in JSON form");
    RuntimeStage {
        base,
        binary,
        uid: uid.parse().expect("a numeric USER"),
        gid: gid.parse().expect("a numeric group"),
        entrypoint,
    }
}

/// The statically linked release binary, built once per test process.
pub fn static_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| script("scripts/build-static.sh"))
        .clone()
}

/// Lays out the image's root filesystem in `root`: the files distroless/static provides that
/// this binary uses, and the binary. Returns every file written (paths inside the image).
pub fn write_rootfs(root: &Path) -> Vec<String> {
    let stage = runtime_stage();
    let nonroot = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n",
        uid = stage.uid,
        gid = stage.gid
    );
    let group = format!("root:x:0:\nnobody:x:65534:\nnonroot:x:{}:\n", stage.gid);
    let bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt")
        .expect("the machine's CA bundle (Debian's ca-certificates)");
    let binary = std::fs::read(static_binary()).expect("reading the static binary");
    let files: Vec<(String, Vec<u8>)> = vec![
        ("/etc/passwd".into(), nonroot.into_bytes()),
        ("/etc/group".into(), group.into_bytes()),
        ("/etc/nsswitch.conf".into(), b"hosts: files dns\n".to_vec()),
        ("/etc/ssl/certs/ca-certificates.crt".into(), bundle),
        (stage.binary.clone(), binary),
    ];
    for (path, bytes) in &files {
        let at = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, bytes).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join(stage.binary.trim_start_matches('/')),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    files.into_iter().map(|(p, _)| p).collect()
}

/// Bytes of every file under `root`.
pub fn size(root: &Path) -> u64 {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
