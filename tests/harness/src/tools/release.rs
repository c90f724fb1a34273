//! What a release publishes, as the one place that names it says (Cargo.toml's `version`,
//! `repository` and `[package.metadata.release]`), and the release itself: `dist/` as
//! `scripts/release.sh` builds it, once per test process.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use crate::tools::repo::{repo, script_yielding};

/// A key of Cargo.toml's `[package.metadata.release]`, e.g. `image`.
pub fn metadata(key: &str) -> String {
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).expect("reading Cargo.toml");
    let section = cargo
        .split("\n[package.metadata.release]\n")
        .nth(1)
        .expect("Cargo.toml has [package.metadata.release]");
    value(section.lines().take_while(|l| !l.starts_with('[')), key)
        .unwrap_or_else(|| panic!("no {key} in [package.metadata.release]"))
}

/// The image a release publishes, with no tag: `ghcr.io/<org>/eso-recovery`.
pub fn published_image() -> String {
    metadata("image")
}

/// Cargo.toml's `repository`: where the source, the releases and their archives live.
pub fn repository() -> String {
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).expect("reading Cargo.toml");
    value(cargo.lines(), "repository").expect("Cargo.toml has a repository")
}

/// Cargo.toml's `version`: the product's (the harness is a crate of its own, so its
/// `CARGO_PKG_VERSION` is not).
pub fn version() -> String {
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).expect("reading Cargo.toml");
    value(cargo.lines(), "version").expect("Cargo.toml has a version")
}

/// `key = "value"` (TOML) or `key: value` (YAML) among `lines`, unquoted.
pub fn value<'a>(mut lines: impl Iterator<Item = &'a str>, key: &str) -> Option<String> {
    lines.find_map(|l| {
        let rest = l
            .strip_prefix(&format!("{key} = "))
            .or_else(|| l.strip_prefix(&format!("{key}: ")))?;
        Some(rest.trim().trim_matches('"').to_string())
    })
}

/// `dist/` after `scripts/release.sh` for the crate's own version (which set-version.sh then
/// leaves as it is): built once per test process.
pub struct Dist {
    pub dir: PathBuf,
    pub version: String,
}

impl Dist {
    /// The release, built the first time it is asked for.
    pub fn built() -> &'static Dist {
        static DIST: OnceLock<Dist> = OnceLock::new();
        DIST.get_or_init(|| {
            let version = version();
            // Its five fat-LTO builds yield the CPU to the tests in the other lanes: once they
            // starved a real-ESO test's API server past its run's 10 s bound (cold CI).
            script_yielding("scripts/release.sh", &[&version]);
            Dist {
                dir: repo().join("dist"),
                version,
            }
        })
    }

    /// A file of the release, by name.
    pub fn file(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        assert!(path.is_file(), "dist/ holds no {name}");
        path
    }

    /// The binary for `platform` (`linux-amd64`, `darwin-arm64`, `windows-amd64`, …).
    pub fn binary(&self, platform: &str) -> PathBuf {
        let exe = if platform.starts_with("windows") {
            ".exe"
        } else {
            ""
        };
        self.file(&format!("eso-recovery-v{}-{platform}{exe}", self.version))
    }

    /// The release archive for `platform`: a `.tar.gz`, for Windows a `.zip`.
    pub fn archive(&self, platform: &str) -> PathBuf {
        let kind = if platform.starts_with("windows") {
            "zip"
        } else {
            "tar.gz"
        };
        self.file(&format!("eso-recovery-v{}-{platform}.{kind}", self.version))
    }

    /// The multi-arch image index as an OCI archive.
    pub fn image_index(&self) -> PathBuf {
        self.file(&format!("eso-recovery-v{}.oci.tar", self.version))
    }

    /// The CycloneDX SBOM of the `linux`, `darwin` or `windows-amd64` build.
    pub fn sbom(&self, platforms: &str) -> PathBuf {
        match platforms {
            "linux" => self.file(&format!("eso-recovery-v{}.cdx.json", self.version)),
            _ => self.file(&format!(
                "eso-recovery-v{}-{platforms}.cdx.json",
                self.version
            )),
        }
    }

    /// The packaged chart.
    pub fn chart(&self) -> PathBuf {
        self.file(&format!("eso-recovery-{}.tgz", self.version))
    }

    /// The rendered krew manifest.
    pub fn krew_manifest(&self) -> PathBuf {
        self.file("eso-recovery.yaml")
    }
}

/// What a PE file says: its machine (objdump's words) and the DLLs it imports, lowercased and
/// sorted: what a Windows program needs beyond itself.
pub fn pe(path: &Path) -> (String, Vec<String>) {
    let out = std::process::Command::new("objdump")
        .arg("-p")
        .arg(path)
        .output()
        .expect("running objdump (binutils)");
    assert!(
        out.status.success(),
        "objdump -p {}: {out:?}",
        path.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let format = text
        .lines()
        .find_map(|l| {
            l.split_once("file format ")
                .map(|(_, f)| f.trim().to_string())
        })
        .unwrap_or_default();
    let mut dlls: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("DLL Name: "))
        .map(str::to_lowercase)
        .collect();
    dlls.sort();
    dlls.dedup();
    (format, dlls)
}

/// What an ELF file's header says: what a binary needs to run on a node with nothing else.
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    /// `e_machine`: 0x3E x86-64, 0xB7 aarch64.
    pub machine: u16,
    /// Whether it names a program interpreter (`PT_INTERP`): a dynamically linked binary does.
    pub interpreter: bool,
}

/// Reads a 64-bit little-endian ELF file's header and program headers.
pub fn elf(path: &Path) -> Elf {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 64 && bytes.starts_with(b"\x7fELF\x02\x01"),
        "{} is not a 64-bit little-endian ELF file",
        path.display()
    );
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54) as usize, u16_at(56) as usize);
    const PT_INTERP: u32 = 3;
    let interpreter = (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) == PT_INTERP
    });
    Elf {
        machine: u16_at(18),
        interpreter,
    }
}

/// What a 64-bit Mach-O file's load commands say: what a macOS binary needs to start.
#[derive(Debug, PartialEq, Eq)]
pub struct MachO {
    /// `cputype`: 0x0100000C arm64, 0x01000007 x86-64.
    pub cpu: u32,
    /// The platform (1: macOS): `LC_BUILD_VERSION`'s, or macOS for `LC_VERSION_MIN_MACOSX`,
    /// which a linker writes instead for an OS older than 10.14.
    pub platform: u32,
    /// The oldest macOS it starts on, as "11.0.0".
    pub min_os: String,
    /// The libraries it loads (`LC_LOAD_DYLIB`, weak and re-exported ones too), in order.
    pub dylibs: Vec<String>,
    /// Whether it carries a code signature whose SHA-256 page hashes match the file: macOS on
    /// Apple silicon kills an arm64 program without one ("Killed: 9"); an ad-hoc one is enough.
    pub signed: bool,
}

/// Reads a 64-bit little-endian Mach-O file's header and load commands.
pub fn macho(path: &Path) -> MachO {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert!(
        bytes.len() > 32 && u32_at(0) == 0xfeed_facf,
        "{} is not a 64-bit little-endian Mach-O file",
        path.display()
    );
    const LC_LOAD_DYLIB: u32 = 0xC;
    const LC_LOAD_WEAK_DYLIB: u32 = 0x8000_0018;
    const LC_REEXPORT_DYLIB: u32 = 0x8000_001F;
    const LC_BUILD_VERSION: u32 = 0x32;
    const LC_VERSION_MIN_MACOSX: u32 = 0x24;
    const PLATFORM_MACOS: u32 = 1;
    const LC_CODE_SIGNATURE: u32 = 0x1D;
    let mut found = MachO {
        cpu: u32_at(4),
        platform: 0,
        min_os: String::new(),
        dylibs: Vec::new(),
        signed: false,
    };
    let mut at = 32;
    for _ in 0..u32_at(16) {
        let (cmd, size) = (u32_at(at), u32_at(at + 4) as usize);
        match cmd {
            LC_LOAD_DYLIB | LC_LOAD_WEAK_DYLIB | LC_REEXPORT_DYLIB => {
                let name = &bytes[at + u32_at(at + 8) as usize..at + size];
                let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
                found
                    .dylibs
                    .push(String::from_utf8_lossy(&name[..end]).into_owned());
            }
            LC_BUILD_VERSION | LC_VERSION_MIN_MACOSX => {
                let (platform, v) = match cmd {
                    LC_BUILD_VERSION => (u32_at(at + 8), u32_at(at + 12)),
                    _ => (PLATFORM_MACOS, u32_at(at + 8)),
                };
                found.platform = platform;
                found.min_os = format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff);
            }
            LC_CODE_SIGNATURE => {
                let offset = u32_at(at + 8) as usize;
                found.signed = code_signature_holds(&bytes, offset);
            }
            _ => {}
        }
        at += size;
    }
    found
}

/// Checks the embedded signature at `offset` (a SuperBlob, big-endian): its CodeDirectory's
/// SHA-256 hash of every page up to its code limit matches the file.
fn code_signature_holds(bytes: &[u8], offset: usize) -> bool {
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    const SUPERBLOB: usize = 0xfade_0cc0;
    const CODE_DIRECTORY: usize = 0xfade_0c02;
    const SHA256: u8 = 2;
    if be(offset) != SUPERBLOB {
        return false;
    }
    let directory = (0..be(offset + 8)).find_map(|i| {
        let entry = offset + 12 + i * 8;
        (be(entry) == 0).then(|| offset + be(entry + 4))
    });
    let Some(cd) = directory.filter(|cd| be(*cd) == CODE_DIRECTORY) else {
        return false;
    };
    let (hash_offset, code_slots, code_limit) = (be(cd + 16), be(cd + 28), be(cd + 32));
    let (hash_size, hash_type, page_shift) = (bytes[cd + 36], bytes[cd + 37], bytes[cd + 39]);
    if hash_type != SHA256 || hash_size != 32 || code_limit > bytes.len() {
        return false;
    }
    let page = 1usize << page_shift;
    code_slots == code_limit.div_ceil(page)
        && (0..code_slots).all(|i| {
            let data = &bytes[i * page..((i + 1) * page).min(code_limit)];
            let want = &bytes[cd + hash_offset + i * 32..cd + hash_offset + (i + 1) * 32];
            ring::digest::digest(&ring::digest::SHA256, data).as_ref() == want
        })
}
