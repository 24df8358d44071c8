//! Provisioning the eBPF toolchain and building `relay-ebpf`.
//!
//! `build()` checks, in order, and installs only what is missing: a nightly
//! toolchain, nightly's `rust-src` (for `-Z build-std=core`), and a
//! `bpf-linker` built against the same LLVM major version as nightly's rustc.
//! When everything is present it only runs cheap probes and cargo's own
//! up-to-date check.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The BPF target the program is built for.
const TARGET: &str = "bpfel-unknown-none";

/// Where bpffs is mounted for pinning.
const BPFFS: &str = "/sys/fs/bpf";

/// Builds the XDP object, provisioning what is missing; returns its path.
pub fn build() -> Result<PathBuf> {
    ensure_nightly()?;
    ensure_rust_src()?;
    let major = nightly_llvm_major()?;
    let linker_dir = ensure_bpf_linker(major)?;
    build_object(&linker_dir)
}

/// Mounts bpffs on /sys/fs/bpf if it is not mounted.
pub fn ensure_bpffs() -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    if bpffs_mounted(&mounts) {
        return Ok(());
    }
    println!("xtask: mounting bpffs on {BPFFS}");
    std::fs::create_dir_all(BPFFS).with_context(|| format!("creating {BPFFS}"))?;
    run(Command::new("mount").args(["-t", "bpf", "bpf", BPFFS]))
        .with_context(|| format!("mounting bpffs on {BPFFS} (needs root: `sudo mount -t bpf bpf {BPFFS}`)"))
}

fn bpffs_mounted(mounts: &str) -> bool {
    mounts.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (_dev, dir, fstype) = (f.next(), f.next(), f.next());
        dir == Some(BPFFS) && fstype == Some("bpf")
    })
}

/// The workspace root (the parent of `xtask/`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Installs the nightly toolchain when rustup has none (eBPF builds and the fuzzers need it).
pub(crate) fn ensure_nightly() -> Result<()> {
    let out = capture(Command::new("rustup").args(["toolchain", "list"]))
        .context("listing rustup toolchains (is rustup installed? see https://rustup.rs)")?;
    if out.lines().any(|l| l.starts_with("nightly-") || l.starts_with("nightly ")) {
        return Ok(());
    }
    println!("xtask: installing the nightly toolchain (rustup toolchain install nightly --profile minimal)");
    run(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))
        .context("installing the nightly toolchain; run `rustup toolchain install nightly --profile minimal` by hand to see why")
}

fn ensure_rust_src() -> Result<()> {
    let sysroot = capture(nightly("rustc").args(["--print", "sysroot"]))
        .context("asking nightly rustc for its sysroot")?;
    let core = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if core.is_dir() {
        return Ok(());
    }
    println!("xtask: installing rust-src for nightly (needed by -Z build-std=core)");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        .context("installing rust-src; run `rustup component add rust-src --toolchain nightly` by hand to see why")
}

/// The LLVM major version nightly's rustc is built with, from `rustc -vV`.
fn nightly_llvm_major() -> Result<u32> {
    let vv = capture(nightly("rustc").arg("-vV")).context("running `rustc +nightly -vV`")?;
    parse_llvm_major(&vv).with_context(|| format!("no `LLVM version:` line in `rustc +nightly -vV` output:\n{vv}"))
}

fn parse_llvm_major(rustc_vv: &str) -> Option<u32> {
    let version = rustc_vv.lines().find_map(|l| l.strip_prefix("LLVM version:"))?;
    version.trim().split('.').next()?.parse().ok()
}

/// Returns the directory holding a `bpf-linker` that uses LLVM `major`,
/// installing one when there is none or it uses another LLVM.
fn ensure_bpf_linker(major: u32) -> Result<PathBuf> {
    let cargo_bin = cargo_home().join("bin");
    if let Some(linker) = find_bpf_linker(&cargo_bin) {
        match linker_llvm_major(&linker) {
            Ok(Some(m)) if m == major => return Ok(dir_of(&linker)),
            Ok(Some(m)) => println!(
                "xtask: {} uses LLVM {m} but nightly rustc uses LLVM {major}: reinstalling",
                linker.display()
            ),
            Ok(None) => {
                // Statically linked LLVM: nothing to compare; the build will tell.
                return Ok(dir_of(&linker));
            }
            Err(e) => println!("xtask: {} is unusable ({e:#}): reinstalling", linker.display()),
        }
    } else {
        println!("xtask: bpf-linker not found: installing one for LLVM {major}");
    }
    install_bpf_linker(major)?;
    let linker = cargo_bin.join("bpf-linker");
    match linker_llvm_major(&linker)? {
        Some(m) if m != major => bail!(
            "the freshly installed {} uses LLVM {m}, not {major}; check LLVM_SYS_{major}1_PREFIX and /usr/lib/llvm-{major}",
            linker.display()
        ),
        _ => Ok(cargo_bin),
    }
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

fn dir_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `bpf-linker` in `$CARGO_HOME/bin` first (where `cargo install` puts it), then on `PATH`.
fn find_bpf_linker(cargo_bin: &Path) -> Option<PathBuf> {
    let in_cargo = cargo_bin.join("bpf-linker");
    if in_cargo.is_file() {
        return Some(in_cargo);
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// The LLVM major `linker` is dynamically linked against; `None` when it links
/// LLVM statically (ldd shows no libLLVM).
fn linker_llvm_major(linker: &Path) -> Result<Option<u32>> {
    capture(Command::new(linker).arg("--version"))
        .with_context(|| format!("running `{} --version`", linker.display()))?;
    let ldd = capture(Command::new("ldd").arg(linker)).with_context(|| format!("running `ldd {}`", linker.display()))?;
    if ldd.contains("not found") {
        bail!("missing shared libraries:\n{ldd}");
    }
    Ok(parse_libllvm_major(&ldd))
}

/// Finds `libLLVM-<major>` or `libLLVM.so.<major>` in `ldd` output.
fn parse_libllvm_major(ldd: &str) -> Option<u32> {
    ldd.split_whitespace().find_map(|word| {
        let name = word.rsplit('/').next()?;
        let rest = name.strip_prefix("libLLVM-").or_else(|| name.strip_prefix("libLLVM.so."))?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

fn install_bpf_linker(major: u32) -> Result<()> {
    let prefix = format!("/usr/lib/llvm-{major}");
    let packages = [format!("llvm-{major}-dev"), format!("libpolly-{major}-dev"), "libzstd-dev".to_string()];
    let missing: Vec<&String> = packages.iter().filter(|p| !crate::deb_installed(p)).collect();
    if !missing.is_empty() {
        println!("xtask: installing {} (apt-get)", join(&missing));
        let install = || {
            run(Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"))
        };
        if install().is_err() {
            println!("xtask: apt-get install failed; running apt-get update and retrying");
            run(Command::new("apt-get").arg("update")).context("apt-get update")?;
            install().with_context(|| {
                format!(
                    "installing {} failed; LLVM {major} may need apt.llvm.org (https://apt.llvm.org/llvm.sh {major})",
                    join(&missing)
                )
            })?;
        }
    }
    if !Path::new(&prefix).join("lib").is_dir() {
        bail!("{prefix}/lib does not exist after installing llvm-{major}-dev");
    }
    println!("xtask: cargo install bpf-linker (feature llvm-{major}, LLVM from {prefix}); this takes a few minutes");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .args(["install", "bpf-linker", "--force", "--no-default-features", "--features"])
        .arg(format!("llvm-{major}"))
        .env(format!("LLVM_SYS_{major}1_PREFIX"), &prefix)
        .env("RUSTFLAGS", format!("-L {prefix}/lib -C link-args=-Wl,-rpath,{prefix}/lib"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR"))
    .with_context(|| format!("cargo install bpf-linker --features llvm-{major} failed (see its output above)"))
}

fn join(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

fn build_object(linker_dir: &Path) -> Result<PathBuf> {
    let dir = workspace_root().join("relay-ebpf");
    let path = env::join_paths(
        std::iter::once(linker_dir.to_path_buf()).chain(env::split_paths(&env::var_os("PATH").unwrap_or_default())),
    )
    .context("building PATH")?;
    println!("xtask: building relay-ebpf ({TARGET}, nightly)");
    let mut cmd = nightly("cargo");
    cmd.args(["build", "--release", "--target", TARGET, "-Z", "build-std=core"])
        .current_dir(&dir)
        .env("PATH", path);
    // Settings of the outer (stable, host) build must not leak into this one:
    // the object must land in relay-ebpf/target and use relay-ebpf/.cargo/config.toml.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
    ] {
        cmd.env_remove(var);
    }
    run(&mut cmd).with_context(|| format!("building the XDP program in {} (see the compiler output above)", dir.display()))?;
    let obj = dir.join("target").join(TARGET).join("release").join("relay-ebpf");
    if !obj.is_file() {
        bail!("the build succeeded but {} is missing", obj.display());
    }
    Ok(obj)
}

/// `rustup run nightly <tool>`: explicit, and works whether or not `cargo` on
/// PATH is the rustup proxy.
fn nightly(tool: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly"]).arg(tool).env_remove("RUSTUP_TOOLCHAIN");
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_rustc_vv() {
        let vv = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(vv), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
    }

    #[test]
    fn libllvm_major_from_ldd() {
        let deb = "\tlibLLVM.so.22.1 => /usr/lib/llvm-22/lib/libLLVM.so.22.1 (0x00007f)\n";
        assert_eq!(parse_libllvm_major(deb), Some(22));
        let old = "\tlibLLVM-19.so => /usr/lib/x86_64-linux-gnu/libLLVM-19.so (0x00007f)\n";
        assert_eq!(parse_libllvm_major(old), Some(19));
        assert_eq!(parse_libllvm_major("\tlibc.so.6 => /lib/libc.so.6\n"), None);
    }

    #[test]
    fn bpffs_in_mounts() {
        assert!(bpffs_mounted("bpf /sys/fs/bpf bpf rw,nosuid 0 0\n"));
        assert!(!bpffs_mounted("sysfs /sys sysfs rw 0 0\n"));
    }
}
