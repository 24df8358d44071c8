//! When to start a new archive file: a pure decision on sizes and times.

use std::time::SystemTime;

use crate::config::Rotation;

/// What the decision needs to know about the open file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    /// Bytes in the file now (header included).
    pub size: u64,
    /// Whether it holds at least one block. A file without one is never
    /// rotated, so no archive file ends up empty.
    pub has_blocks: bool,
    /// When the file was created.
    pub opened: SystemTime,
}

/// Whether to close `file` before writing a block of `next_block` bytes
/// (pass 0 to ask whether the file is already due).
///
/// Size: roll when the block would take the file past the limit, so files stay
/// at or under it unless a single block is larger. Time: roll once the file is
/// as old as the period; a clock that stepped back counts as no time passed.
pub fn should_rotate(policy: Rotation, file: FileState, now: SystemTime, next_block: u64) -> bool {
    if !file.has_blocks {
        return false;
    }
    match policy {
        Rotation::Size(limit) => file.size >= limit || file.size.saturating_add(next_block) > limit,
        Rotation::Time(period) => now
            .duration_since(file.opened)
            .is_ok_and(|age| age >= period),
    }
}

/// When a time-rotated file becomes due (`None` for size rotation).
pub fn rotation_deadline(policy: Rotation, file: FileState) -> Option<SystemTime> {
    match policy {
        Rotation::Time(period) if file.has_blocks => file.opened.checked_add(period),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn file(size: u64, has_blocks: bool) -> FileState {
        FileState {
            size,
            has_blocks,
            opened: at(0),
        }
    }

    #[test]
    fn size_rolls_before_a_block_that_would_cross_the_limit() {
        let p = Rotation::Size(1000);
        assert!(!should_rotate(p, file(500, true), at(0), 500));
        assert!(should_rotate(p, file(500, true), at(0), 501));
        assert!(!should_rotate(p, file(999, true), at(0), 0));
        assert!(should_rotate(p, file(1000, true), at(0), 0));
        assert!(should_rotate(p, file(1200, true), at(0), 0));
    }

    #[test]
    fn never_rolls_a_file_without_blocks() {
        // A block bigger than the limit goes into a fresh file rather than
        // leaving an empty one behind.
        assert!(!should_rotate(
            Rotation::Size(100),
            file(200, false),
            at(0),
            5000
        ));
        let t = Rotation::Time(Duration::from_secs(60));
        assert!(!should_rotate(t, file(200, false), at(3600), 10));
        assert_eq!(rotation_deadline(t, file(200, false)), None);
    }

    #[test]
    fn time_rolls_once_the_file_is_old_enough() {
        let p = Rotation::Time(Duration::from_secs(60));
        assert!(!should_rotate(p, file(10, true), at(59), 1));
        assert!(should_rotate(p, file(10, true), at(60), 1));
        assert!(should_rotate(p, file(10, true), at(61), 0));
        assert_eq!(rotation_deadline(p, file(10, true)), Some(at(60)));
        assert_eq!(rotation_deadline(Rotation::Size(5), file(10, true)), None);
    }

    #[test]
    fn clock_stepping_back_does_not_roll() {
        let p = Rotation::Time(Duration::from_secs(60));
        let before_open = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        assert!(!should_rotate(p, file(10, true), before_open, 1));
    }
}
