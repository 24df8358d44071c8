//! The layout of a channel's ring: one value of a `BPF_F_MMAPABLE` array map
//! that the XDP program writes records into and the channel process reads
//! through `mmap`, written by hand instead of `BPF_MAP_TYPE_RINGBUF`.
//!
//! Why: the kernel's ring buffer takes a lock with interrupts saved per
//! reservation and a full barrier per submit, through two helper calls:
//! about 27 ns of the program's 63–65 ns per matched datagram on the bench
//! machine (`docs/PERFORMANCE.md`), against a 60 ns target. Here a
//! reservation is one `cmpxchg` on the producer position and a commit one
//! store of the record's commit word, both inline.
//!
//! ```text
//! [CONSUMER_POS: u64, own cache line][PRODUCER_POS: u64, own cache line]
//! [DATA: RING_BYTES, then SLACK bytes]
//! ```
//!
//! Positions count bytes since the ring was created and never wrap (2^64
//! bytes). A record at position `p` starts at `DATA + (p & OFFSET_MASK)`:
//! an 8-byte commit word, then the [`crate::record::RecordHeader`] and the
//! payload padded to its size class ([`crate::record::CLASSES`]). A record
//! that starts near the end runs on into the slack instead of wrapping, so
//! every record is contiguous and every offset the program writes at is
//! bounded by constants (the verifier's condition), and no record is ever
//! split.
//!
//! Producers (the program, on any CPU) reserve `[p, p + span)` by
//! `cmpxchg` on the producer position when `p + span - consumer <=
//! RING_BYTES`, write the record, then publish it by storing
//! [`commit_word`]`(p, ..)` into its commit word, ordered after the record's
//! bytes: a plain store where the CPU keeps stores in order (x86), else an
//! atomic exchange ([`crate::maps::COMMIT_BY_STORE`]). The consumer reads a
//! record only when the word at its position says it is committed *at that
//! position*: a word left from an earlier lap names an older position, so no
//! zeroing is needed. It then advances the consumer position with a release
//! store, which frees the space.

use crate::record::CLASSES;

/// Bytes of record space per channel (powers of two; positions are masked).
pub const RING_BYTES: usize = crate::channel::RING_BYTES as usize;

/// Offset of the consumer position (written by the channel process only).
pub const CONSUMER_POS: usize = 0;
/// Offset of the producer position (advanced by the program only).
pub const PRODUCER_POS: usize = 64;
/// Offset of the record space.
pub const DATA: usize = 128;

/// Bytes of the commit word that precedes each record.
pub const COMMIT_LEN: usize = 8;

/// The longest record: commit word and the largest size class.
pub const MAX_SPAN: usize = COMMIT_LEN + CLASSES[CLASSES.len() - 1];

/// Room after the ring for a record that starts before its end.
pub const SLACK: usize = MAX_SPAN;

/// Bytes of the map value (and of the mapping, rounded up to pages).
pub const VALUE_BYTES: usize = DATA + RING_BYTES + SLACK;

/// Masks a position to the offset of its record in the record space; also
/// clears the low 3 bits, so the program's verifier knows every commit word
/// is 8-byte aligned (atomics must be).
pub const OFFSET_MASK: u64 = (RING_BYTES as u64 - 1) & !7;

/// Commit word flag: the record is complete.
pub const COMMITTED: u64 = 1;
/// Commit word flag: the record's payload could not be copied; skip it.
pub const DISCARDED: u64 = 2;

/// Bytes a record of size class `class` takes in the ring.
pub const fn span(class: usize) -> usize {
    COMMIT_LEN + class
}

/// Where the record at `pos` starts, relative to [`DATA`].
pub const fn offset(pos: u64) -> usize {
    (pos & OFFSET_MASK) as usize
}

/// The commit word of a complete record at `pos` (a multiple of 8).
pub const fn commit_word(pos: u64, discarded: bool) -> u64 {
    pos | COMMITTED | if discarded { DISCARDED } else { 0 }
}

/// What the commit word `word` read at position `pos` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Not yet committed at this position (reserved and being written, or
    /// not reserved): stop reading here.
    Pending,
    /// A complete record; `discarded` records carry no payload to deliver.
    Committed { discarded: bool },
}

/// Reads a commit word found at position `pos`.
pub const fn slot(word: u64, pos: u64) -> Slot {
    if word & !7 == pos && word & COMMITTED != 0 {
        Slot::Committed { discarded: word & DISCARDED != 0 }
    } else {
        Slot::Pending
    }
}

/// Whether a record of `span` bytes fits at `producer` with the consumer at `consumer`.
pub const fn fits(producer: u64, consumer: u64, span: usize) -> bool {
    // Wrapping: positions read from shared memory are untrusted; a consumer
    // position ahead of the producer's reads as a full ring.
    producer.wrapping_add(span as u64).wrapping_sub(consumer) <= RING_BYTES as u64
}

const _: () = {
    assert!(RING_BYTES.is_power_of_two() && RING_BYTES >= 2 * MAX_SPAN);
    assert!(DATA.is_multiple_of(64) && PRODUCER_POS >= CONSUMER_POS + 64 && DATA >= PRODUCER_POS + 64);
    // Every record written at a masked offset stays inside the value.
    assert!(DATA + OFFSET_MASK as usize + MAX_SPAN <= VALUE_BYTES);
    let mut i = 0;
    while i < CLASSES.len() {
        assert!(span(CLASSES[i]).is_multiple_of(8));
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_words_name_their_position() {
        for pos in [0u64, 8, 72, RING_BYTES as u64, 5 * RING_BYTES as u64 + 4096, !7] {
            assert_eq!(slot(commit_word(pos, false), pos), Slot::Committed { discarded: false });
            assert_eq!(slot(commit_word(pos, true), pos), Slot::Committed { discarded: true });
            // The same offset one lap later or earlier is not this record.
            let lap = pos.wrapping_add(RING_BYTES as u64);
            assert_eq!(offset(lap), offset(pos));
            assert_eq!(slot(commit_word(pos, false), lap), Slot::Pending);
            assert_eq!(slot(commit_word(lap, false), pos), Slot::Pending);
        }
        // Fresh (zeroed) memory is pending, position 0 included.
        assert_eq!(slot(0, 0), Slot::Pending);
        assert_eq!(slot(64, 64), Slot::Pending, "the position without the committed flag");
    }

    #[test]
    fn fits_leaves_unread_records_alone() {
        let r = RING_BYTES as u64;
        assert!(fits(0, 0, 72));
        assert!(fits(r - 72, 0, 72), "exactly full");
        assert!(!fits(r - 64, 0, 72));
        assert!(fits(3 * r + 100, 2 * r + 172, 72));
        assert!(!fits(3 * r + 101, 2 * r + 172, 72));
        assert!(!fits(100, 200, 8), "consumer ahead of the producer");
    }

    #[test]
    fn offsets_are_aligned_and_bounded() {
        for pos in [0u64, 8, 13, RING_BYTES as u64 - 1, RING_BYTES as u64 - 8, u64::MAX] {
            let off = offset(pos);
            assert_eq!(off % 8, 0);
            assert!(DATA + off + MAX_SPAN <= VALUE_BYTES);
        }
    }
}
