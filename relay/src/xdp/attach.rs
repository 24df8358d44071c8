//! Loading the program, attaching it to an interface, pinning, detaching.

use std::fmt;
use std::path::{Path, PathBuf};

use aya::programs::{links::FdLink, Xdp, XdpMode};
use aya_obj::programs::XdpAttachType;
use aya::maps::{Array, Map, MapData};
use aya::{Ebpf, EbpfLoader};
use relay_common::maps;

use super::pin::{ensure_bpffs, pin_dir, BUILD, LINK, PROG};
use super::{sys, XdpError};

/// How the program runs on the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// In the driver, before an skb exists (fastest; needs driver support).
    Native,
    /// Generic XDP, after the skb is built (works on any interface).
    Skb,
}

impl Mode {
    fn aya(self) -> XdpMode {
        match self {
            Mode::Native => XdpMode::Driver,
            Mode::Skb => XdpMode::Skb,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Skb => "skb",
        })
    }
}

/// A program attached to an interface and pinned under [`Attachment::pin_dir`].
///
/// Dropping it does not detach: the pins keep the link and maps alive. The
/// loaded [`Ebpf`] stays available for the caller's map access and logger.
pub struct Attachment {
    pub iface: String,
    pub ifindex: u32,
    pub mode: Mode,
    pub pin_dir: PathBuf,
    /// True when an earlier attachment (live with `force`, or stale) was removed first.
    pub replaced: bool,
    ebpf: Ebpf,
}

impl Attachment {
    /// The loaded object: maps by [`relay_common::maps`] names, and for `aya_log::EbpfLogger`.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }
}

/// What [`detach`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Detached {
    /// The pins were removed; the program is detached.
    Removed { dir: PathBuf },
    /// There was nothing to detach.
    NotAttached { dir: PathBuf },
}

/// What is pinned for an interface.
enum Pinned {
    Nothing,
    /// A link attached to the interface of that name in this namespace.
    Live,
    /// Pins left by a link whose interface is gone, or a half-made attachment.
    Stale,
}

fn pinned(iface: &str, dir: &Path, ifindex: Option<u32>) -> Result<Pinned, XdpError> {
    if !dir.exists() {
        return Ok(Pinned::Nothing);
    }
    let link = dir.join(LINK);
    let link_ifindex = sys::pinned_link_ifindex(&link).map_err(|source| XdpError::Io {
        what: "inspecting the pinned link",
        path: link.clone(),
        source,
    })?;
    let _ = iface;
    Ok(match (link_ifindex, ifindex) {
        (Some(l), Some(i)) if l == i => Pinned::Live,
        _ => Pinned::Stale,
    })
}

/// True when `iface` (in this network namespace) has the speeddata program attached and pinned.
pub fn is_attached(iface: &str) -> bool {
    let dir = pin_dir(iface);
    matches!(pinned(iface, &dir, sys::ifindex(iface)), Ok(Pinned::Live))
}

/// Loads the embedded program, attaches it to `iface` in `mode`, and pins the
/// link and maps under `/sys/fs/bpf/speeddata/<iface>@ns<INODE>/`.
///
/// An existing live attachment is refused unless `force`, which replaces it
/// (detach, then attach: frames arriving in between go to the stack). Stale
/// pins (interface deleted, or an interrupted attach) are replaced silently.
pub fn attach(iface: &str, mode: Mode, force: bool) -> Result<Attachment, XdpError> {
    super::object()?;
    let ifindex = sys::ifindex(iface).ok_or_else(|| XdpError::UnknownInterface { iface: iface.into() })?;
    ensure_bpffs()?;
    let dir = pin_dir(iface);
    let replaced = match pinned(iface, &dir, Some(ifindex))? {
        Pinned::Nothing => false,
        Pinned::Live if !force => return Err(XdpError::AlreadyAttached { iface: iface.into(), dir }),
        Pinned::Live | Pinned::Stale => {
            remove_pins(&dir)?;
            true
        }
    };

    let mut ebpf = load()?;
    let link = link_to(xdp_program(&mut ebpf)?, iface, ifindex, mode)?;

    // Maps first, link last: a directory with a link is a complete attachment.
    std::fs::create_dir_all(&dir).map_err(|source| XdpError::Io { what: "creating", path: dir.clone(), source })?;
    let pinned = pin_all(&mut ebpf, link, &dir);
    if let Err(e) = pinned {
        let _ = remove_pins(&dir);
        return Err(e);
    }
    Ok(Attachment { iface: iface.into(), ifindex, mode, pin_dir: dir, replaced, ebpf })
}

/// Attaches the program pinned for `iface` again, with the same maps and
/// rings, to the interface now carrying that name: after the interface was
/// deleted (which detached the program) and created again. Replaces the
/// pinned link. Returns the new interface index.
pub fn relink(iface: &str, mode: Mode) -> Result<u32, XdpError> {
    let dir = pin_dir(iface);
    let ifindex = sys::ifindex(iface).ok_or_else(|| XdpError::UnknownInterface { iface: iface.into() })?;
    let prog_path = dir.join(PROG);
    let mut program = Xdp::from_pin(&prog_path, XdpAttachType::Interface)
        .map_err(|e| XdpError::OpenPinned { path: prog_path.clone(), source: Box::new(e) })?;
    let link = link_to(&mut program, iface, ifindex, mode)?;
    let path = dir.join(LINK);
    // The old link is already detached (its interface went away); unpinning frees it.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("unpinning", &path)(e)),
        _ => {}
    }
    link.pin(&path).map_err(|e| XdpError::Pin { path, source: Box::new(e) })?;
    Ok(ifindex)
}

/// Attaches `program` to interface `ifindex` through a BPF link (which can be pinned).
fn link_to(program: &mut Xdp, iface: &str, ifindex: u32, mode: Mode) -> Result<FdLink, XdpError> {
    let attach_err = |source: aya::programs::ProgramError| XdpError::Attach {
        iface: iface.into(),
        mode,
        hint: attach_hint(&source, mode),
        source: Box::new(source),
    };
    let id = program.attach_to_if_index(ifindex, mode.aya()).map_err(attach_err)?;
    let link = program.take_link(id).map_err(attach_err)?;
    FdLink::try_from(link).map_err(|e| XdpError::Attach {
        iface: iface.into(),
        mode,
        hint: " (the kernel attached without a BPF link, which cannot be pinned; needs Linux >= 5.9)",
        source: Box::new(e),
    })
}

/// [`attach`] done by a short-lived child process (this binary's `attach`
/// command), leaving only the pins behind. aya's loader reads and parses the
/// kernel's BTF (`/sys/kernel/btf/vmlinux`, ~17 MB of heap here) whatever the
/// program needs; a supervisor that runs for months should not carry that
/// peak. The caller opens the pins ([`super::ChannelMaps::open`]).
pub fn attach_in_child(iface: &str, mode: Mode) -> Result<(), XdpError> {
    let exe = std::env::current_exe().map_err(|source| XdpError::Io { what: "finding", path: "/proc/self/exe".into(), source })?;
    let out = std::process::Command::new(&exe)
        .args(["attach", "--iface", iface, "--mode", &mode.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| XdpError::Io { what: "running", path: exe.clone(), source })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr.trim().trim_start_matches("Error: ").to_owned();
    Err(XdpError::Child { iface: iface.into(), mode, message })
}

/// How the program publishes a ring record once written
/// (`relay_common::maps::COMMIT_BY_STORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// A plain store: in order on CPUs that keep stores in order (x86).
    Store,
    /// An atomic exchange, a full barrier: correct on every CPU.
    Exchange,
}

impl Commit {
    /// What this CPU needs: [`Commit::Store`] on x86, else [`Commit::Exchange`].
    pub const NATIVE: Commit = if cfg!(any(target_arch = "x86_64", target_arch = "x86")) { Commit::Store } else { Commit::Exchange };
}

/// Loads the embedded object and its XDP program into the kernel (verified,
/// not attached): for [`attach`], and for tests that run it with
/// `BPF_PROG_TEST_RUN` (see [`xdp_program`]).
pub fn load() -> Result<Ebpf, XdpError> {
    load_committing(Commit::NATIVE)
}

/// As [`load`], with the ring commit forced to `commit` (tests run both).
pub fn load_committing(commit: Commit) -> Result<Ebpf, XdpError> {
    load_with(super::object()?, commit, true)
}

/// As [`load`], for another build of the program (the bench compares builds
/// with it; older ones have no [`Commit`] setting). `object` must be 8-byte
/// aligned, as aya requires.
pub fn load_object(object: &[u8]) -> Result<Ebpf, XdpError> {
    load_with(object, Commit::NATIVE, false)
}

fn load_with(object: &[u8], commit: Commit, must_have_commit: bool) -> Result<Ebpf, XdpError> {
    let by_store = u8::from(commit == Commit::Store);
    let mut ebpf = EbpfLoader::new()
        // The program logs only at debug level; keep that off unless asked for.
        .override_global(aya_log::LEVEL, &(log_level() as u8), false)
        .override_global(relay_common::maps::COMMIT_BY_STORE, &by_store, must_have_commit)
        .load(object)
        .map_err(|e| XdpError::Load(Box::new(e)))?;
    xdp_program(&mut ebpf)?.load().map_err(|e| XdpError::Verify(Box::new(e)))?;
    Ok(ebpf)
}

/// The XDP program in a loaded object.
pub fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(maps::PROGRAM)
        .ok_or(XdpError::MissingInObject { what: "program", name: maps::PROGRAM })?
        .try_into()
        .map_err(|e| XdpError::Verify(Box::new(e)))
}

fn pin_all(ebpf: &mut Ebpf, link: FdLink, dir: &Path) -> Result<(), XdpError> {
    for &name in maps::PINNED {
        let map = ebpf.map(name).ok_or(XdpError::MissingInObject { what: "map", name })?;
        let path = dir.join(name);
        map.pin(&path).map_err(|e| XdpError::Pin { path, source: Box::new(e) })?;
    }
    // The program too, so that [`relink`] can attach it again, maps and all,
    // when the interface is deleted and re-created.
    let path = dir.join(PROG);
    xdp_program(ebpf)?.pin(&path).map_err(|e| XdpError::Pin { path, source: Box::new(e) })?;
    pin_build(&dir.join(BUILD))?;
    let path = dir.join(LINK);
    link.pin(&path).map_err(|e| XdpError::Pin { path, source: Box::new(e) })?;
    Ok(())
}

/// What identifies the embedded object: its length and CRC-32. Only
/// compared for equality, between the pins of an attachment and this binary.
pub fn build_id() -> u64 {
    let object = super::embedded_object().unwrap_or_default();
    (object.len() as u64) << 32 | u64::from(crc32fast::hash(object))
}

/// Pins at `path` a one-entry array holding [`build_id`].
fn pin_build(path: &Path) -> Result<(), XdpError> {
    let obj = aya_obj::Map::new_from_params(super::channels::BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0);
    let write = |detail: String| XdpError::MapWrite { name: BUILD, detail };
    let data = MapData::create(obj, "sdx_build", None).map_err(|e| write(format!("creating: {e}")))?;
    let mut array: Array<MapData, u64> = Array::try_from(Map::Array(data)).map_err(|e| write(e.to_string()))?;
    array.set(0, build_id(), 0).map_err(|e| write(e.to_string()))?;
    array.pin(path).map_err(|e| XdpError::Pin { path: path.into(), source: Box::new(e) })
}

/// True when the attachment pinned for `iface` was made by this build (see
/// [`BUILD`]); false when it was made by another one, or by one from before
/// builds were recorded, or nothing is pinned.
pub fn attached_build_matches(iface: &str) -> bool {
    let path = pin_dir(iface).join(BUILD);
    let Ok(data) = MapData::from_pin(&path) else { return false };
    let Ok(array) = Array::<MapData, u64>::try_from(Map::Array(data)) else { return false };
    array.get(&0, 0).is_ok_and(|id| id == build_id())
}

/// Removes `iface`'s pins, which detaches the program. Idempotent: with
/// nothing pinned it returns [`Detached::NotAttached`].
pub fn detach(iface: &str) -> Result<Detached, XdpError> {
    ensure_bpffs()?;
    let dir = pin_dir(iface);
    if !dir.exists() {
        return Ok(Detached::NotAttached { dir });
    }
    let link = dir.join(super::pin::LINK);
    sys::detach_pinned_link(&link).map_err(io("detaching the link pinned at", &link))?;
    remove_pins(&dir)?;
    Ok(Detached::Removed { dir })
}

/// Unpins everything in `dir` and removes it. The link goes last so that a
/// reader never sees a live link without its maps.
fn remove_pins(dir: &Path) -> Result<(), XdpError> {
    let link = dir.join(LINK);
    for entry in std::fs::read_dir(dir).map_err(io("listing", dir))? {
        let path = entry.map_err(io("listing", dir))?.path();
        if path != link {
            std::fs::remove_file(&path).map_err(io("unpinning", &path))?;
        }
    }
    match std::fs::remove_file(&link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("unpinning", &link)(e)),
        _ => {}
    }
    std::fs::remove_dir(dir).map_err(io("removing", dir))
}

fn attach_hint(e: &aya::programs::ProgramError, mode: Mode) -> &'static str {
    let errno = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        .or_else(|| match e {
            aya::programs::ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
            _ => None,
        });
    match (errno, mode) {
        (Some(libc::EBUSY), _) | (Some(libc::EEXIST), _) => {
            " (another XDP program is attached to this interface: see `ip link show`)"
        }
        (Some(libc::EOPNOTSUPP), Mode::Native) | (Some(libc::EINVAL), Mode::Native) => {
            " (the driver may not support native XDP: try --mode skb)"
        }
        _ => "",
    }
}

/// The kernel-side aya-log level: warn, or `$SPEEDDATA_XDP_LOG` (error..trace).
fn log_level() -> aya_log::Level {
    match std::env::var("SPEEDDATA_XDP_LOG").as_deref() {
        Ok("error") => aya_log::Level::Error,
        Ok("info") => aya_log::Level::Info,
        Ok("debug") => aya_log::Level::Debug,
        Ok("trace") => aya_log::Level::Trace,
        _ => aya_log::Level::Warn,
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> XdpError {
    let path = path.to_path_buf();
    move |source| XdpError::Io { what, path, source }
}
