//! The release as a user gets it. `scripts/release.sh` builds dist/ (static linux binaries for
//! amd64 and arm64, the macOS and Windows builds of the kubectl plugin, their archives, the SBOMs,
//! the multi-arch image index, the chart, the krew manifest); `scripts/publish.sh` pushes it to a
//! real OCI registry on 127.0.0.1 (CNCF distribution, the stand-in for ghcr.io), signed by cosign
//! with a key made for the test. Then, as a user: cosign verifies it (and refuses what is unsigned
//! or altered), helm installs the chart from the registry, krew installs the plugin from its
//! archive, the arm64 build runs a real check under qemu and the Windows build one under Wine.
//! The macOS builds cannot run here: their Mach-O headers are checked, and the forge runs them.
//! Every tool the test runs is kept off the network: a proxy that refuses stands in for
//! everything but 127.0.0.1.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use base64::Engine;
use harness::{
    process::controlplane::{ControlPlane, bins},
    process::openbao::OpenBao,
    process::registry::{Registry, release_tool},
    process::seed::Seed,
    run::expect,
    run::run_program,
    tools::helm::{helm_bin, install},
    tools::image::platforms,
    tools::procs::offline,
    tools::release::{Dist, elf, macho, metadata, pe, published_image, repository, value},
    tools::repo::repo,
    tools::wine::{Wine, windows_path},
};
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const EM_X86_64: u16 = 0x3E;
const EM_AARCH64: u16 = 0xB7;
const CPU_TYPE_X86_64: u32 = 0x0100_0007;
const CPU_TYPE_ARM64: u32 = 0x0100_000C;
const PLATFORM_MACOS: u32 = 1;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `key: value` of a YAML file, at any depth (the first one).
fn yaml_value(text: &str, key: &str) -> String {
    value(text.lines().map(str::trim_start), key).unwrap_or_else(|| panic!("no {key}:"))
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256(path: &Path) -> String {
    let out = ok(
        Command::new("sha256sum").arg(path).output().unwrap(),
        "sha256sum",
    );
    out.split_whitespace().next().unwrap().to_string()
}

/// The HEAD commit's time, in seconds since the epoch (what the release dates its archives by).
fn commit_time() -> String {
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo())
        .output()
        .unwrap();
    ok(out, "git log").trim().to_string()
}

fn head_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    ok(out, "git rev-parse").trim().to_string()
}

#[test]
fn every_file_states_the_version_and_the_image_the_release_names() {
    let image = published_image();
    let chart = read("charts/eso-recovery/Chart.yaml");
    assert_eq!(yaml_value(&chart, "version"), VERSION, "Chart.yaml version");
    assert_eq!(yaml_value(&chart, "appVersion"), VERSION, "appVersion");
    assert_eq!(yaml_value(&chart, "home"), repository(), "Chart.yaml home");

    let values = read("charts/eso-recovery/values.yaml");
    assert_eq!(
        format!(
            "{}/{}",
            yaml_value(&values, "registry"),
            yaml_value(&values, "repository")
        ),
        image,
        "the chart's default image"
    );
    let kustomization = read("manifests/base/kustomization.yaml");
    assert_eq!(yaml_value(&kustomization, "newName"), image);
    assert_eq!(yaml_value(&kustomization, "newTag"), VERSION);
    assert!(
        metadata("charts").starts_with(image.split('/').next().unwrap()),
        "the chart and the image are published to the same registry"
    );

    // The krew template: the repository's release archives, five platforms, the binary.
    let krew = read(".krew.yaml");
    assert_eq!(yaml_value(&krew, "homepage"), repository());
    assert_eq!(yaml_value(&krew, "version"), "{{ .TagName }}");
    let download = format!("{}/releases/download/{{{{ .TagName }}}}", repository());
    let uris: Vec<&str> = krew
        .lines()
        .filter_map(|l| l.trim().strip_prefix("{{addURIAndSha \""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "linux-amd64.tar.gz",
            "linux-arm64.tar.gz",
            "darwin-amd64.tar.gz",
            "darwin-arm64.tar.gz",
            "windows-amd64.zip"
        ]
        .map(|archive| format!("{download}/eso-recovery-{{{{ .TagName }}}}-{archive}")),
    );
    assert_eq!(krew.matches("bin: eso-recovery\n").count(), 4);
    assert_eq!(krew.matches("bin: eso-recovery.exe\n").count(), 1);

    // Nothing still points users at a placeholder.
    for path in [
        "README.md",
        "Dockerfile",
        "charts/eso-recovery/values.yaml",
        "charts/eso-recovery/Chart.yaml",
        "manifests/base/kustomization.yaml",
        ".krew.yaml",
    ] {
        assert!(!read(path).contains("your-org"), "{path} names your-org");
    }
}

#[test]
fn set_version_fills_every_file_and_refuses_what_is_not_semver() {
    let root = tempfile::tempdir().unwrap();
    let files = [
        "Cargo.toml",
        "Cargo.lock",
        "charts/eso-recovery/Chart.yaml",
        "charts/eso-recovery/values.yaml",
        "manifests/base/kustomization.yaml",
    ];
    for file in files {
        let to = root.path().join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(file), &to).unwrap();
    }
    let set = |version: &str| {
        Command::new(repo().join("scripts/set-version.sh"))
            .arg(version)
            .arg(root.path())
            .output()
            .unwrap()
    };
    let now = |file: &str| std::fs::read_to_string(root.path().join(file)).unwrap();

    ok(set("2.3.4-rc.1"), "set-version.sh 2.3.4-rc.1");
    let cargo = now("Cargo.toml");
    assert_eq!(
        value(cargo.lines(), "version").as_deref(),
        Some("2.3.4-rc.1")
    );
    assert!(
        now("Cargo.lock").contains("name = \"eso-recovery\"\nversion = \"2.3.4-rc.1\"\n"),
        "Cargo.lock's own entry"
    );
    let chart = now("charts/eso-recovery/Chart.yaml");
    assert_eq!(yaml_value(&chart, "version"), "2.3.4-rc.1");
    assert_eq!(yaml_value(&chart, "appVersion"), "2.3.4-rc.1");
    let kustomization = now("manifests/base/kustomization.yaml");
    assert_eq!(yaml_value(&kustomization, "newTag"), "2.3.4-rc.1");
    assert_eq!(yaml_value(&kustomization, "newName"), published_image());
    // Only those lines changed: every other line of every file is as it was.
    for file in files {
        let (before, after) = (read(file), now(file));
        let changed = before
            .lines()
            .zip(after.lines())
            .filter(|(b, a)| b != a)
            .count();
        assert_eq!(before.lines().count(), after.lines().count(), "{file}");
        let expected = match file {
            "Cargo.toml" | "Cargo.lock" | "manifests/base/kustomization.yaml" => 1,
            "charts/eso-recovery/Chart.yaml" => 2,
            _ => 0,
        };
        assert_eq!(changed, expected, "{file}: lines changed");
    }
    // Idempotent.
    let snapshot: Vec<String> = files.iter().map(|f| now(f)).collect();
    ok(set("2.3.4-rc.1"), "set-version.sh again");
    assert_eq!(snapshot, files.map(now));

    for bad in ["2.3", "v2.3.4", "2.3.4.5", "02.3.4"] {
        let out = set(bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(
            stderr.contains(&format!("VERSION={bad} is not a SemVer version")),
            "{bad:?}: {stderr}"
        );
    }
    assert_eq!(
        snapshot,
        files.map(now),
        "a refused version changed nothing"
    );
}

#[test]
fn dist_holds_static_binaries_archives_an_sbom_the_image_index_the_chart_and_the_krew_manifest() {
    let dist = Dist::built();
    let tag = format!("v{VERSION}");

    // checksums.txt names every other file, each with its sha256.
    let sums = std::fs::read_to_string(dist.file("checksums.txt")).unwrap();
    let mut named: Vec<&str> = Vec::new();
    for line in sums.lines() {
        let (sum, name) = line.split_once("  ").expect("sha256sum's format");
        assert_eq!(sha256(&dist.file(name)), sum, "{name}");
        named.push(name);
    }
    let mut files: Vec<String> = std::fs::read_dir(&dist.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "checksums.txt")
        .collect();
    files.sort();
    named.sort();
    assert_eq!(named, files);
    assert_eq!(files.len(), 16, "{files:?}");

    // Static binaries: no program interpreter, the architecture named.
    let amd64 = dist.binary("linux-amd64");
    let arm64 = dist.binary("linux-arm64");
    assert_eq!(
        elf(&amd64),
        harness::tools::release::Elf {
            machine: EM_X86_64,
            interpreter: false
        }
    );
    assert_eq!(
        elf(&arm64),
        harness::tools::release::Elf {
            machine: EM_AARCH64,
            interpreter: false
        }
    );
    let version = ok(
        Command::new(&amd64).arg("--version").output().unwrap(),
        "--version",
    );
    assert_eq!(
        version.trim(),
        format!(
            "eso-recovery {VERSION} (commit {}, target x86_64-unknown-linux-gnu)",
            head_commit()
        )
    );

    // macOS: Mach-O for each architecture, from the oldest macOS its Rust target supports, that
    // loads only libSystem and the libiconv Rust's libc names: no framework (none could be
    // linked without Apple's SDK, and a laptop must not need one). Apple silicon runs no arm64
    // program without a code signature (an ad-hoc one does); Intel Macs need none.
    for (platform, cpu, min_os, must_be_signed) in [
        ("darwin-arm64", CPU_TYPE_ARM64, "11.0.0", true),
        ("darwin-amd64", CPU_TYPE_X86_64, "10.12.0", false),
    ] {
        let found = macho(&dist.binary(platform));
        assert_eq!(
            (found.cpu, found.platform, found.min_os.as_str()),
            (cpu, PLATFORM_MACOS, min_os),
            "{platform}: CPU, platform, minimum macOS"
        );
        assert!(
            found.signed || !must_be_signed,
            "{platform} has no code signature that holds"
        );
        let allowed = [
            "/usr/lib/libSystem.B.dylib",
            "/usr/lib/libiconv.2.dylib",
            "/usr/lib/libcharset.1.dylib",
        ];
        assert!(
            found.dylibs.contains(&allowed[0].to_string())
                && found.dylibs.iter().all(|d| allowed.contains(&d.as_str())),
            "{platform} loads {:?}",
            found.dylibs
        );
    }

    // Archives: the binary, LICENSE and README.md, owned by root, reproducible gzip.
    for platform in ["linux-amd64", "linux-arm64", "darwin-arm64", "darwin-amd64"] {
        let (archive, binary) = (dist.archive(platform), dist.binary(platform));
        let arch = platform;
        let listing = ok(
            Command::new("tar")
                .args(["-tzvf"])
                .arg(&archive)
                .output()
                .unwrap(),
            "tar -t",
        );
        let members: Vec<(&str, &str, &str)> = listing
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0], f[1], *f.last().unwrap())
            })
            .collect();
        assert_eq!(
            members,
            [
                ("-rwxr-xr-x", "0/0", "eso-recovery"),
                ("-rw-r--r--", "0/0", "LICENSE"),
                ("-rw-r--r--", "0/0", "README.md"),
            ],
            "{arch}"
        );
        let inside = Command::new("tar")
            .arg("-xzOf")
            .arg(&archive)
            .arg("eso-recovery")
            .output()
            .unwrap();
        assert!(inside.stdout == std::fs::read(&binary).unwrap(), "{arch}");
        let gz = std::fs::read(&archive).unwrap();
        assert_eq!(&gz[3..8], &[0, 0, 0, 0, 0], "{arch}: a gzip name or mtime");
    }

    // Windows: an x86-64 PE that imports only DLLs every Windows 10 has (the Universal CRT's
    // api-ms-win-crt-* among them), zipped with LICENSE and README.md, reproducibly.
    let exe = dist.binary("windows-amd64");
    let (format, dlls) = pe(&exe);
    assert_eq!(format, "pei-x86-64");
    let system = [
        "advapi32.dll",
        "bcrypt.dll",
        "bcryptprimitives.dll",
        "crypt32.dll",
        "kernel32.dll",
        "ncrypt.dll",
        "ntdll.dll",
        "secur32.dll",
        "userenv.dll",
        "ws2_32.dll",
    ];
    let foreign: Vec<&String> = dlls
        .iter()
        .filter(|d| !system.contains(&d.as_str()) && !d.starts_with("api-ms-win-"))
        .collect();
    assert!(foreign.is_empty(), "eso-recovery.exe needs {foreign:?}");
    // Each member: its name, its mode, and whether it is dated the commit's time (a zip's clock
    // counts in 2 s steps), as the release's tarballs are.
    let zip = ok(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, time, zipfile\n\
                 t = time.gmtime(int(sys.argv[2]))[:6]\n\
                 t = t[:5] + (t[5] - t[5] % 2,)\n\
                 for i in zipfile.ZipFile(sys.argv[1]).infolist():\n\
                 \x20   print(i.filename, oct(i.external_attr >> 16), i.date_time == t)",
            )
            .arg(dist.archive("windows-amd64"))
            .arg(commit_time())
            .output()
            .unwrap(),
        "listing the zip",
    );
    assert_eq!(
        zip.lines().collect::<Vec<_>>(),
        [
            "LICENSE 0o100644 True",
            "README.md 0o100644 True",
            "eso-recovery.exe 0o100755 True",
        ],
    );
    let inside = Command::new("python3")
        .args(["-c", "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('eso-recovery.exe'))"])
        .arg(dist.archive("windows-amd64"))
        .output()
        .unwrap();
    assert!(
        inside.stdout == std::fs::read(&exe).unwrap(),
        "the zip's eso-recovery.exe"
    );

    // The SBOMs: CycloneDX, the crate and what it ships with, not the test-only crates; the
    // Windows one with the crates only that build has.
    for (sbom, platform_only) in [
        (dist.sbom("linux"), "openssl-probe"),
        (dist.sbom("darwin"), "webpki-roots"),
        (dist.sbom("windows-amd64"), "schannel"),
    ] {
        let sbom: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
        assert_eq!(sbom["bomFormat"], "CycloneDX");
        assert_eq!(sbom["metadata"]["component"]["name"], "eso-recovery");
        assert_eq!(sbom["metadata"]["component"]["version"], VERSION);
        let components: Vec<&str> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        for shipped in [
            "kube-client",
            "k8s-openapi",
            "tokio",
            "hyper-rustls",
            "rustls",
            "clap",
            platform_only,
        ] {
            assert!(components.contains(&shipped), "SBOM lacks {shipped}");
        }
        for test_only in ["proptest", "tower-test", "axum", "tempfile", "rcgen"] {
            assert!(!components.contains(&test_only), "SBOM lists {test_only}");
        }
    }

    // The image index: linux/amd64 and linux/arm64, each the nonroot image with its binary.
    let (_, mut images) = platforms(&dist.image_index());
    // The index's order is the engine's; a platform is found by its architecture.
    images.sort_by_key(|i| {
        i.config["architecture"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let archs: Vec<&str> = images
        .iter()
        .map(|i| i.config["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for (image, binary) in images.iter().zip([&amd64, &arm64]) {
        assert_eq!(image.config["os"], "linux");
        assert_eq!(image.user(), (65532, 65532));
        let labels = &image.config["config"]["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.source"],
            repository().as_str()
        );
        assert_eq!(labels["org.opencontainers.image.version"], VERSION);
        assert_eq!(
            labels["org.opencontainers.image.revision"],
            head_commit().as_str()
        );
        assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
        let inside = image.rootfs().join("usr/local/bin/eso-recovery");
        assert!(
            std::fs::read(&inside).unwrap() == std::fs::read(binary).unwrap(),
            "the {} image holds the release's binary",
            image.config["architecture"]
        );
    }
    assert_eq!(
        elf(&images[1].rootfs().join("usr/local/bin/eso-recovery")).machine,
        EM_AARCH64
    );

    // The chart: version and appVersion from VERSION.
    let chart = ok(
        Command::new("tar")
            .arg("-xzOf")
            .arg(dist.chart())
            .arg("eso-recovery/Chart.yaml")
            .output()
            .unwrap(),
        "tar -x Chart.yaml",
    );
    assert_eq!(yaml_value(&chart, "version"), VERSION);
    assert_eq!(yaml_value(&chart, "appVersion"), VERSION);

    // The krew manifest: this version, each archive's URL and its real sha256.
    let krew = std::fs::read_to_string(dist.krew_manifest()).unwrap();
    assert_eq!(yaml_value(&krew, "version"), tag);
    assert!(!krew.contains("{{"), "{krew}");
    let lines: Vec<&str> = krew.lines().map(str::trim).collect();
    let mut seen = 0;
    for pair in lines.windows(2) {
        if let (Some(uri), Some(sum)) = (
            pair[0].strip_prefix("uri: "),
            pair[1].strip_prefix("sha256: "),
        ) {
            let name = uri.rsplit('/').next().unwrap();
            assert_eq!(
                uri,
                format!("{}/releases/download/{tag}/{name}", repository())
            );
            assert_eq!(sum, sha256(&dist.file(name)), "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, 5, "{krew}");
}

/// A cosign key pair made for the test, and the password that opens it.
struct Key {
    dir: tempfile::TempDir,
}

const KEY_PASSWORD: &str = "release-test";

impl Key {
    fn generate() -> Key {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(release_tool("cosign"));
        offline(&mut cmd, dir.path())
            .arg("generate-key-pair")
            .env("COSIGN_PASSWORD", KEY_PASSWORD)
            .current_dir(dir.path());
        ok(cmd.output().unwrap(), "cosign generate-key-pair");
        Key { dir }
    }

    fn private(&self) -> PathBuf {
        self.dir.path().join("cosign.key")
    }

    fn public(&self) -> PathBuf {
        self.dir.path().join("cosign.pub")
    }
}

/// `cosign ARGS` against the local registry, offline.
fn cosign(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(release_tool("cosign"));
    offline(&mut cmd, home.path()).args(args).output().unwrap()
}

/// `cosign verify` with the public key, no transparency log (none was written), plain HTTP.
fn verify(key: &Path, reference: &str) -> Output {
    let key = key.display().to_string();
    cosign(&[
        "verify",
        "--key",
        &key,
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        reference,
    ])
}

/// Asserts that `cosign verify` refused `what` because no signature is on its digest.
#[track_caller]
fn refused_unsigned(out: Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} verified");
    assert!(stderr.contains("no signatures found"), "{what}: {stderr}");
}

/// The release's image with one label added to its amd64 config, as an OCI layout: what someone
/// who re-pushed the tag with a changed image would serve.
fn altered_layout(index: &Path) -> tempfile::TempDir {
    let layout = tempfile::tempdir().unwrap();
    ok(
        Command::new("tar")
            .arg("-xf")
            .arg(index)
            .arg("-C")
            .arg(layout.path())
            .output()
            .unwrap(),
        "unpacking the image index",
    );
    let blob = |digest: &str| {
        layout
            .path()
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let read_json = |digest: &str| -> Value {
        serde_json::from_slice(&std::fs::read(blob(digest)).unwrap()).unwrap()
    };
    let write_json = |value: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(value).unwrap();
        let tmp = layout.path().join("blob");
        std::fs::write(&tmp, &bytes).unwrap();
        let digest = format!("sha256:{}", sha256(&tmp));
        std::fs::rename(&tmp, blob(&digest)).unwrap();
        (digest, bytes.len())
    };
    let mut top: Value =
        serde_json::from_slice(&std::fs::read(layout.path().join("index.json")).unwrap()).unwrap();
    let mut index = read_json(top["manifests"][0]["digest"].as_str().unwrap());
    let mut manifest = read_json(index["manifests"][0]["digest"].as_str().unwrap());
    let mut config = read_json(manifest["config"]["digest"].as_str().unwrap());
    config["config"]["Labels"]["altered"] = "yes".into();
    let (digest, size) = write_json(&config);
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = write_json(&manifest);
    index["manifests"][0]["digest"] = digest.into();
    index["manifests"][0]["size"] = size.into();
    let (digest, size) = write_json(&index);
    top["manifests"][0]["digest"] = digest.into();
    top["manifests"][0]["size"] = size.into();
    std::fs::write(
        layout.path().join("index.json"),
        serde_json::to_vec(&top).unwrap(),
    )
    .unwrap();
    layout
}

#[test]
fn the_published_image_verifies_only_signed_and_unaltered_and_the_chart_installs_from_the_registry()
{
    let dist = Dist::built();
    let registry = Registry::start();
    let key = Key::generate();
    let home = tempfile::tempdir().unwrap();

    let mut publish = Command::new(repo().join("scripts/publish.sh"));
    offline(&mut publish, home.path())
        .args([VERSION, &registry.host])
        .env("COSIGN_KEY", key.private())
        .env("COSIGN_PASSWORD", KEY_PASSWORD)
        .env("PLAIN_HTTP", "1")
        .env("COSIGN_BIN", release_tool("cosign"))
        .env("HELM_BIN", helm_bin());
    let published = ok(publish.output().unwrap(), "scripts/publish.sh");
    let (index_digest, images) = platforms(&dist.image_index());
    let name = published_image().split_once('/').unwrap().1.to_string();
    let repo_ref = format!("{}/{name}", registry.host);
    assert_eq!(
        published.lines().last().unwrap_or_default(),
        format!("{repo_ref}@{index_digest}"),
        "{}",
        registry.log_tail()
    );

    // The tag a user pulls verifies, as the index; so does each platform's image.
    let tagged = format!("{repo_ref}:{VERSION}");
    let out = ok(verify(&key.public(), &tagged), "cosign verify");
    let claims: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        claims[0]["critical"]["image"]["docker-manifest-digest"],
        index_digest.as_str()
    );
    for image in &images {
        ok(
            verify(&key.public(), &format!("{repo_ref}@{}", image.digest)),
            "cosign verify, one platform",
        );
    }

    // The SBOM is attested: the predicate is the release's SBOM.
    let public = key.public().display().to_string();
    let out = ok(
        cosign(&[
            "verify-attestation",
            "--type",
            "cyclonedx",
            "--key",
            &public,
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            &tagged,
        ]),
        "cosign verify-attestation",
    );
    let envelope: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(statement["predicateType"], "https://cyclonedx.org/bom");
    let sbom: Value = serde_json::from_slice(&std::fs::read(dist.sbom("linux")).unwrap()).unwrap();
    assert_eq!(statement["predicate"]["components"], sbom["components"]);

    // Another key does not verify it.
    let other = Key::generate();
    let refused = verify(&other.public(), &tagged);
    assert!(
        !refused.status.success(),
        "verified with a key that did not sign"
    );

    // The same image under a name nobody signed: refused.
    let unsigned = registry.copy(
        &format!("oci-archive:{}", dist.image_index().display()),
        &format!("eso-recovery/unsigned:{VERSION}"),
    );
    refused_unsigned(verify(&key.public(), &unsigned), "an unsigned image");

    // The helm chart, from the registry, installs with the published image as its default.
    let cp = ControlPlane::start(false);
    Seed::design().apply(&cp);
    let out = install(
        &cp.admin_kubeconfig,
        "eso-recovery",
        &format!(
            "oci://{}/{}/eso-recovery",
            registry.host,
            metadata("charts").split_once('/').unwrap().1
        ),
        "security",
        &[
            "--version".into(),
            VERSION.into(),
            "--plain-http".into(),
            "--wait=false".into(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm install oci://: {stderr}");
    assert!(
        stderr.contains(&format!("Pulled: {}/", registry.host)),
        "{stderr}"
    );
    let image = cp.kubectl(&[
        "get",
        "cronjob",
        "eso-recovery",
        "-n",
        "security",
        "-o",
        "jsonpath={.spec.jobTemplate.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.trim(), format!("{}:{VERSION}", published_image()));

    // Someone re-pushes the signed tag with a changed image: it no longer verifies.
    let altered = altered_layout(&dist.image_index());
    registry.copy(
        &format!("oci:{}", altered.path().display()),
        &format!("{name}:{VERSION}"),
    );
    refused_unsigned(verify(&key.public(), &tagged), "an altered image");
    // The signed digest itself still verifies: the signature names content, not a tag.
    ok(
        verify(&key.public(), &format!("{repo_ref}@{index_digest}")),
        "cosign verify by digest",
    );
}

#[test]
fn krew_installs_the_plugin_from_its_archive_and_kubectl_runs_it() {
    let dist = Dist::built();
    let root = tempfile::tempdir().unwrap();
    let krew = |archive: &Path| {
        let mut cmd = Command::new(harness::tools::repo::script("tests/krew/build.sh"));
        offline(&mut cmd, root.path())
            .env("KREW_ROOT", root.path().join("krew"))
            .arg("install")
            .arg(format!("--manifest={}", dist.krew_manifest().display()))
            .arg(format!("--archive={}", archive.display()));
        cmd.output().unwrap()
    };

    // The arm64 archive for this amd64 machine: its sha256 is not the manifest's, refused.
    let wrong = krew(&dist.archive("linux-arm64"));
    assert!(
        !wrong.status.success(),
        "krew installed an archive with the wrong sha256"
    );

    ok(krew(&dist.archive("linux-amd64")), "krew install");
    let linked = root.path().join("krew/bin/kubectl-eso_recovery");
    assert!(linked.exists(), "krew linked no kubectl-eso_recovery");
    let out = Command::new(bins().join("kubectl"))
        .args(["eso-recovery", "--version"])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", root.path().join("krew/bin").display()),
        )
        .env("HOME", root.path())
        .output()
        .unwrap();
    assert_eq!(
        ok(out, "kubectl eso-recovery --version").trim(),
        format!(
            "kubectl eso-recovery {VERSION} (commit {}, target x86_64-unknown-linux-gnu)",
            head_commit()
        )
    );
}

#[test]
fn the_arm64_binary_runs_a_real_check_under_qemu() {
    let dist = Dist::built();
    let qemu = Path::new("/usr/bin/qemu-aarch64-static");
    assert!(
        qemu.exists(),
        "qemu-aarch64-static is missing: apt-get install qemu-user-static (scripts/test.sh does)"
    );
    let program = [qemu.to_path_buf(), dist.binary("linux-arm64")];
    let version = run_program(&program, None, &["--version"], &[]);
    assert!(
        version
            .stdout
            .trim()
            .ends_with("target aarch64-unknown-linux-musl)"),
        "{}",
        version.dump()
    );

    let cp = ControlPlane::shared();
    let bao = OpenBao::dev();
    let kubeconfig = Some(cp.admin_kubeconfig.as_path());
    healthy_then_would_restart(cp, "arm64", &bao, |args| {
        run_program(&program, kubeconfig, args, &[])
    });
}

/// A foreign build's real check, as the qemu arm64 test and the Wine test run it, each against a
/// store of its own: a healthy run, then with the store degraded a `--dry-run` that would
/// restart and patches nothing.
fn healthy_then_would_restart(
    cp: &ControlPlane,
    name: &str,
    bao: &OpenBao,
    run: impl Fn(&[&str]) -> harness::run::Run,
) {
    let seed = Seed::own(name);
    seed.apply(cp);
    let mut args = seed.args();
    args.push(format!("--vault-addr={}", bao.addr));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect(&run(&args), 0, "store_healthy");
    seed.set_store(cp, false);
    let dry_run = [args.as_slice(), &["--dry-run"]].concat();
    expect(&run(&dry_run), 0, "would_restart");
    assert_eq!(seed.restarted_at(cp), vec![None, None, None]);
}

#[test]
fn the_windows_binary_runs_a_real_check_under_wine() {
    let dist = Dist::built();
    let wine = Wine::with(&dist.binary("windows-amd64"));
    let env = wine.env();
    let mut with: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let program = wine.program();
    let version = run_program(&program, None, &["--version"], &with);
    assert_eq!(
        version.stdout.trim(),
        format!(
            "eso-recovery {VERSION} (commit {}, target x86_64-pc-windows-gnu)",
            head_commit()
        ),
        "{}",
        version.dump()
    );

    // A laptop's run: a kubeconfig with a client certificate (as kubeadm writes one), its files
    // and Vault's CA by Windows paths.
    let cp = ControlPlane::shared();
    let bao = OpenBao::dev_tls();
    let dir = tempfile::tempdir().unwrap();
    let linux = cp.kubeconfig_with_client_cert("on-call", "system:masters", true);
    let kubeconfig = dir.path().join("config");
    let paths = [
        "certificate-authority: ",
        "client-certificate: ",
        "client-key: ",
    ];
    std::fs::write(
        &kubeconfig,
        std::fs::read_to_string(&linux)
            .unwrap()
            .lines()
            .map(
                |l| match paths.iter().find_map(|p| l.split_once(p).map(|s| (p, s))) {
                    Some((key, (indent, path))) => {
                        format!("{indent}{key}{}", windows_path(Path::new(path)))
                    }
                    None => l.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let (kubeconfig, vault_ca) = (windows_path(&kubeconfig), windows_path(&bao.ca_cert()));
    with.extend([
        ("KUBECONFIG", kubeconfig.as_str()),
        ("VAULT_CACERT", vault_ca.as_str()),
    ]);
    healthy_then_would_restart(cp, "windows", &bao, |args| {
        run_program(&program, None, args, &with)
    });
}
