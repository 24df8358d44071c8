//! `relay::config::load` on arbitrary bytes as `relay.yaml` (next to a fixed
//! `global.yaml` and two schema files): returns, never panics; an error
//! lists problems that each say something; a config it accepts keeps the
//! model's promises (channels present, names and ports unique).

#![no_main]

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use speeddata_xdp_fuzz::schemas;

/// Where the target's processes keep their project roots (`cargo xtask fuzz`
/// removes it after the run).
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("speeddata-fuzz-config")
}

/// A project root in the temp directory: `config/{relay,global}.yaml` and
/// `config/agents/{example,rich}.avsc`. Returns the config directory.
static CONFIG_DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let root = scratch_root().join(std::process::id().to_string());
    let _ = fs::remove_dir_all(&root);
    let config = root.join("config");
    fs::create_dir_all(config.join("agents")).expect("creating the fuzz config directory");
    fs::write(
        config.join("global.yaml"),
        include_str!("../../config/global.yaml"),
    )
    .unwrap();
    fs::write(config.join("agents/example.avsc"), schemas::EXAMPLE).unwrap();
    fs::write(config.join("agents/rich.avsc"), schemas::RICH).unwrap();
    config
});

fuzz_target!(|data: &[u8]| {
    let dir = &*CONFIG_DIR;
    fs::write(dir.join("relay.yaml"), data).expect("writing relay.yaml");
    match relay::config::load(dir) {
        Ok(cfg) => {
            assert!(
                !cfg.channels.is_empty(),
                "a config without channels was accepted"
            );
            let names: HashSet<_> = cfg.channels.iter().map(|c| &c.name).collect();
            let ports: HashSet<_> = cfg.channels.iter().map(|c| c.port).collect();
            assert_eq!(
                names.len(),
                cfg.channels.len(),
                "duplicate channel names accepted"
            );
            assert_eq!(
                ports.len(),
                cfg.channels.len(),
                "duplicate channel ports accepted"
            );
            assert!(!relay::config::describe(&cfg).is_empty());
        }
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error without problems");
            for p in &e.problems {
                assert!(
                    !p.message.trim().is_empty(),
                    "a problem without a message: {p:?}"
                );
            }
            assert!(!e.to_string().trim().is_empty());
        }
    }
});
