//! The relay on a Raspberry Pi's CPUs: the unit tests of `relay-common` and
//! the relay, built for 32-bit ARM (armv7, Raspberry Pi OS 32-bit) and
//! 64-bit ARM (aarch64), run under qemu-user. They catch what x86_64 cannot
//! show: a 32-bit `usize` and `time_t`, other atomics, other C toolchains for
//! the compression libraries. Built without the XDP program (old Pi kernels
//! run socket mode), in the default (debug) test profile: quicker to build,
//! and overflow checks on.
//!
//! Provisioning: the Rust targets (`rustup target add`), Debian's cross gcc
//! and libc for each, and `qemu-user`.

use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::{cargo, run_cmd};

/// A target the unit tests run for.
struct Target {
    triple: &'static str,
    /// The Debian cross gcc: links the tests, compiles the C in zstd and snappy.
    gcc: &'static str,
    /// Where the target's libc lives (qemu's `-L`).
    sysroot: &'static str,
    qemu: &'static str,
    packages: [&'static str; 2],
}

const TARGETS: [Target; 2] = [
    Target {
        triple: "armv7-unknown-linux-gnueabihf",
        gcc: "arm-linux-gnueabihf-gcc",
        sysroot: "/usr/arm-linux-gnueabihf",
        qemu: "qemu-arm",
        packages: ["gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"],
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        gcc: "aarch64-linux-gnu-gcc",
        sysroot: "/usr/aarch64-linux-gnu",
        qemu: "qemu-aarch64",
        packages: ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
    },
];

/// Unit tests that cannot pass under qemu-user, and why. Each still runs on
/// the host.
const NOT_UNDER_QEMU: [(&str, &str); 1] = [(
    "channel::socket_io::tests::segmented_sends_arrive_as_the_same_datagrams_in_order",
    "qemu-user does not pass the UDP_SEGMENT socket option on to the kernel, so GSO is off",
)];

/// Provisions what is missing, then runs the unit tests for every target.
pub fn run() -> Result<()> {
    provision()?;
    for t in &TARGETS {
        test(t)?;
    }
    Ok(())
}

fn provision() -> Result<()> {
    let packages = TARGETS.iter().flat_map(|t| t.packages).chain(["qemu-user"]);
    let missing: Vec<&str> = packages.filter(|p| !crate::deb_installed(p)).collect();
    if !missing.is_empty() {
        println!("xtask: installing {} (cross compilers and qemu-user, for the ARM unit tests)", missing.join(" "));
        crate::apt_install(&missing)?;
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::inherit())
        .output()
        .context("listing rustup's installed targets (is rustup installed? see https://rustup.rs)")?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for t in &TARGETS {
        if !installed.lines().any(|l| l.trim() == t.triple) {
            println!("xtask: adding the Rust target {} (rustup target add)", t.triple);
            run_cmd(Command::new("rustup").args(["target", "add", t.triple]))
                .with_context(|| format!("adding the Rust target; run `rustup target add {}` by hand to see why", t.triple))?;
        }
    }
    Ok(())
}

fn test(t: &Target) -> Result<()> {
    println!("xtask: unit tests for {} under {} (relay-common, speeddata-xdp; socket mode only)", t.triple, t.qemu);
    for (name, why) in NOT_UNDER_QEMU {
        println!("xtask:   skipping {name} here: {why}");
    }
    let env_triple = t.triple.to_uppercase().replace('-', "_");
    let mut c = cargo();
    c.args(["test", "--target", t.triple, "-p", "relay-common", "-p", "speeddata-xdp", "--lib", "--", "--exact"])
        .args(NOT_UNDER_QEMU.iter().flat_map(|(name, _)| ["--skip", name]))
        .env(format!("CARGO_TARGET_{env_triple}_LINKER"), t.gcc)
        .env(format!("CARGO_TARGET_{env_triple}_RUNNER"), format!("{} -L {}", t.qemu, t.sysroot))
        .env(format!("CC_{}", t.triple.replace('-', "_")), t.gcc)
        .env("SPEEDDATA_EBPF_OBJ", "none");
    run_cmd(&mut c).with_context(|| format!("the unit tests for {}", t.triple))
}
