//! Finding and driving the `speeddata-xdp` binary under test.

use std::path::{Path, PathBuf};

/// The binary under test: `$SPEEDDATA_BIN` (set by `cargo xtask test`), else
/// the workspace's release then debug build.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SPEEDDATA_BIN") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("speeddata-xdp");
        if p.exists() {
            return p;
        }
    }
    panic!("speeddata-xdp is not built: run `cargo xtask test` (or set SPEEDDATA_BIN)")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// SpeedData's own configuration directory, as its users have it.
pub fn speeddata_fixture() -> PathBuf {
    workspace_root().join("../shared/fixtures/speeddata")
}

/// The example channel schema shipped in `config/`.
pub fn example_schema_path() -> PathBuf {
    workspace_root().join("config/agents/example.avsc")
}
