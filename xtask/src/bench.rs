//! `cargo xtask bench`: builds the relay with its XDP program, then the
//! benchmark (`bench/`, binary `speeddata-bench`) against the same build, and
//! runs it as root. Everything the bench creates lives in network namespaces
//! it deletes on exit; see docs/PERFORMANCE.md for what it measures.

use std::process::Command;

use anyhow::{bail, Result};

use super::{build, cargo, ebpf, ensure_tool, is_root, root, run_cmd};

pub fn run(quick: bool, args: Vec<String>) -> Result<()> {
    if !is_root() {
        bail!("the bench creates network namespaces and attaches XDP programs: run it as root");
    }
    ensure_tool("ip", "iproute2")?;
    ensure_tool("ethtool", "ethtool")?;
    ebpf::ensure_bpffs()?;
    let built = build(true)?;
    let Some(obj) = &built.ebpf else { bail!("the bench needs the XDP program, and it was not built") };
    println!("xtask: building speeddata-bench (release)");
    // The same SPEEDDATA_EBPF_OBJ, so the relay library inside the bench
    // embeds the same program (for BPF_PROG_TEST_RUN).
    run_cmd(cargo().args(["build", "--release", "-p", "speeddata-bench"]).env("SPEEDDATA_EBPF_OBJ", obj))?;
    let mut bench = Command::new(root().join("target/release/speeddata-bench"));
    bench.current_dir(root()).env("SPEEDDATA_BIN", &built.bin);
    if quick {
        bench.arg("--quick");
    }
    run_cmd(bench.args(&args))
}
