//! The independent Avro readers the tests check our files with.

use std::process::Command;

use anyhow::Result;

use crate::run_cmd;

/// (module, package): the two readers, and the codec libraries they load for
/// snappy and zstandard files.
const MODULES: [(&str, &str); 6] = [
    ("fastavro", "fastavro"),
    ("avro", "avro"),
    ("cramjam", "cramjam"),
    ("zstandard", "zstandard"),
    ("backports.zstd", "backports.zstd"), // fastavro's zstandard on Python < 3.14
    ("snappy", "python-snappy"),
];

pub fn ensure_avro_readers() -> Result<()> {
    crate::ensure_tool("python3", "python3")?;
    let missing: Vec<&str> = MODULES
        .iter()
        .filter(|(module, _)| {
            !Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success())
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !Command::new("python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success()) {
        println!("xtask: installing python3-pip");
        crate::apt_install(&["python3-pip"])?;
    }
    println!("xtask: installing Python packages {} (independent Avro readers for the tests)", missing.join(", "));
    let pip = |extra: &[&str]| {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(extra).args(&missing);
        c
    };
    // Debian's own Python refuses pip installs (PEP 668) unless told otherwise;
    // these test-only readers go into the user's site either way.
    if run_cmd(&mut pip(&[])).is_err() {
        run_cmd(&mut pip(&["--break-system-packages"]))?;
    }
    Ok(())
}
