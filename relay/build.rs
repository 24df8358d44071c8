//! Embeds the XDP program when it has been built.
//!
//! The object comes from `$SPEEDDATA_EBPF_OBJ` when that names a file, else
//! from `relay-ebpf/target/bpfel-unknown-none/release/relay-ebpf` (what
//! `cargo xtask build-ebpf` produces). Without it the relay still builds and
//! runs in socket mode; `cfg(speeddata_ebpf)` tells the code which it is.
//! `SPEEDDATA_EBPF_OBJ=none` builds without it even when it exists.

use std::path::{Path, PathBuf};

const ENV: &str = "SPEEDDATA_EBPF_OBJ";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(speeddata_ebpf)");
    println!("cargo:rerun-if-env-changed={ENV}");
    println!("cargo:rerun-if-changed=build.rs");

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let default = manifest.join("../relay-ebpf/target/bpfel-unknown-none/release/relay-ebpf");

    let requested = std::env::var_os(ENV);
    let without = requested.as_deref().and_then(|v| v.to_str()) == Some("none");
    let object = if without {
        None
    } else {
        let from_env = requested.map(PathBuf::from).filter(|p| p.is_file());
        from_env.or_else(|| default.is_file().then(|| default.clone()))
    };

    match object {
        Some(obj) => {
            let obj = obj.canonicalize().unwrap_or(obj);
            println!("cargo:rerun-if-changed={}", obj.display());
            println!("cargo:rustc-cfg=speeddata_ebpf");
            println!("cargo:rustc-env={ENV}={}", obj.display());
        }
        None => {
            // Re-run when the object appears: watch the closest existing
            // ancestor of the default path (a missing path would re-run always).
            if let Some(dir) = default.ancestors().skip(1).find(|d| d.is_dir()) {
                println!("cargo:rerun-if-changed={}", normalize(dir).display());
            }
            // Asked for (the fuzzers, the ARM unit tests): nothing to warn about.
            if !without {
                println!(
                    "cargo:warning=building without the XDP program (socket mode only); run `cargo xtask build-ebpf` first to embed it"
                );
            }
        }
    }
}

fn normalize(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
