//! The independent Avro readers the tests check our files with.

use std::process::Command;

use anyhow::Result;

use crate::run_cmd;

const MODULES: [(&str, &str); 2] = [("fastavro", "fastavro"), ("avro", "avro")];

pub fn ensure_avro_readers() -> Result<()> {
    crate::ensure_tool("python3", "python3")?;
    for (module, package) in MODULES {
        let have = Command::new("python3").args(["-c", &format!("import {module}")]).output()?.status.success();
        if !have {
            println!("xtask: installing Python package {package} (independent Avro reader for the tests)");
            run_cmd(Command::new("python3").args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", package]))?;
        }
    }
    Ok(())
}
