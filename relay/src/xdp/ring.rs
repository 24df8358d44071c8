//! Reading a channel's ring: the consumer side of `relay_common::ring`,
//! over the ring's map value mapped into this process.
//!
//! Records are handed out one at a time ([`RingReader::next_record`]); a
//! record's space is given back to the program when its [`RingRecord`] is
//! dropped. The consumer position lives in the ring, so a reader opened
//! later (a restarted channel) continues where the last one stopped.

use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use aya::maps::MapData;
use memmap2::{MmapOptions, MmapRaw};
use relay_common::record::{record_size, RecordHeader};
use relay_common::ring::{self, Slot, CONSUMER_POS, DATA, PRODUCER_POS, VALUE_BYTES};

use super::XdpError;

/// The reading end of one channel's ring.
pub struct RingReader {
    /// The value's first byte (page aligned), [`VALUE_BYTES`] long.
    base: NonNull<u8>,
    _backing: Backing,
    /// The next record's position; published as the consumer position when
    /// a record is released.
    pos: u64,
    /// Times a committed record announced a length no program writes; the
    /// reader then skipped to the producer position (records in between lost).
    pub corrupt: u64,
}

/// What holds the ring's memory.
enum Backing {
    /// The mapping, and the ring's fd, which keeps the ring alive.
    Map { _mmap: MmapRaw, _data: MapData },
    /// Plain memory, for the unit tests.
    #[cfg(test)]
    Heap { _words: Vec<u64> },
}

// SAFETY: the memory is owned by the reader; nothing else in this process
// refers to it.
unsafe impl Send for RingReader {}

impl RingReader {
    /// Maps the ring `data` (an array map of one [`VALUE_BYTES`] value,
    /// `BPF_F_MMAPABLE`, as [`super::ChannelMaps::create_ring`] makes it).
    pub fn new(data: MapData) -> Result<RingReader, XdpError> {
        let fd = data.fd().as_fd().as_raw_fd();
        let map = MmapOptions::new().len(VALUE_BYTES).map_raw(fd).map_err(|e| XdpError::Ring {
            detail: format!("mapping {VALUE_BYTES} bytes of ring fd {fd}: {e} (not a channel ring of this build?)"),
        })?;
        let base = NonNull::new(map.as_mut_ptr()).expect("mmap returned null");
        Ok(RingReader::over(base, Backing::Map { _mmap: map, _data: data }))
    }

    fn over(base: NonNull<u8>, backing: Backing) -> RingReader {
        let mut reader = RingReader { base, _backing: backing, pos: 0, corrupt: 0 };
        reader.pos = reader.word(CONSUMER_POS).load(Ordering::Acquire);
        reader
    }

    /// The 8-byte aligned word at byte `at` of the value, shared with the program.
    fn word(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at % 8 == 0 && at + 8 <= VALUE_BYTES);
        // SAFETY: in bounds and aligned (the mapping is page aligned); the
        // program only touches this memory through atomics or, for record
        // bytes, before the release that makes them ours.
        unsafe { AtomicU64::from_ptr(self.base().add(at).cast()) }
    }

    fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// The oldest unread record, if one is complete. Records whose copy
    /// failed in the program (committed as discarded) are skipped.
    pub fn next_record(&mut self) -> Option<RingRecord<'_>> {
        loop {
            let at = DATA + ring::offset(self.pos);
            // Acquire: the record's bytes were written before its commit word.
            let word = self.word(at).load(Ordering::Acquire);
            let Slot::Committed { discarded } = ring::slot(word, self.pos) else {
                return None;
            };
            // SAFETY: the header is inside the value (constant bound, see
            // relay_common::ring) and committed: no longer written.
            let len = unsafe { self.base().add(at + ring::COMMIT_LEN + 8).cast::<u16>().read_unaligned() };
            let Some(class) = record_size(usize::from(len)) else {
                // Not a record this program writes: its span is unknown, so
                // resynchronise at the producer's position.
                self.corrupt += 1;
                let producer = self.word(PRODUCER_POS).load(Ordering::Acquire);
                self.release(producer);
                continue;
            };
            let span = ring::span(class) as u64;
            if discarded {
                self.release(self.pos + span);
                continue;
            }
            // SAFETY: `class` bytes after the commit word, inside the value
            // (every record is), committed and not released until the
            // returned record (which borrows the reader) is dropped.
            let bytes = unsafe { std::slice::from_raw_parts(self.base().add(at + ring::COMMIT_LEN), class) };
            let ptr = NonNull::from(bytes);
            return Some(RingRecord { bytes: ptr, next: self.pos + span, reader: self });
        }
    }

    /// Gives everything before `pos` back to the program.
    fn release(&mut self, pos: u64) {
        self.pos = pos;
        // Release: our reads of the records before `pos` happen before the
        // program may reuse their space.
        self.word(CONSUMER_POS).store(pos, Ordering::Release);
    }
}

/// One record: [`RecordHeader`], payload and padding (use the header's
/// length, as [`RecordHeader::parse`] does). Released when dropped.
pub struct RingRecord<'a> {
    bytes: NonNull<[u8]>,
    next: u64,
    reader: &'a mut RingReader,
}

impl std::ops::Deref for RingRecord<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: see `next_record`; valid until `self` is dropped.
        unsafe { self.bytes.as_ref() }
    }
}

impl Drop for RingRecord<'_> {
    fn drop(&mut self) {
        self.reader.release(self.next);
    }
}

const _: () = assert!(RecordHeader::LEN == 16, "the length is read at header byte 8");

#[cfg(test)]
mod tests {
    use relay_common::ring::{commit_word, span, COMMIT_LEN, RING_BYTES};

    use super::*;

    /// A reader over zeroed memory, and a producer that writes records as
    /// the program does (reserve, header, payload, then the commit word).
    fn ring() -> RingReader {
        let mut heap = vec![0u64; VALUE_BYTES / 8];
        let base = NonNull::new(heap.as_mut_ptr().cast::<u8>()).unwrap();
        RingReader::over(base, Backing::Heap { _words: heap })
    }

    /// Writes a record of `payload` at the producer position; `None` when full.
    fn produce(r: &RingReader, payload: &[u8], discarded: bool) -> Option<u64> {
        let class = record_size(payload.len()).unwrap();
        let pos = r.word(PRODUCER_POS).load(Ordering::Relaxed);
        if !ring::fits(pos, r.word(CONSUMER_POS).load(Ordering::Relaxed), span(class)) {
            return None;
        }
        r.word(PRODUCER_POS).store(pos + span(class) as u64, Ordering::Relaxed);
        let at = DATA + ring::offset(pos);
        let words = RecordHeader::words(pos, [0, 0], payload.len() as u16, 40000u16.to_be_bytes(), [192, 0, 2, 1]);
        // SAFETY: inside the value (every record is).
        unsafe {
            let rec = r.base().add(at + COMMIT_LEN);
            rec.cast::<[u64; 2]>().write_unaligned(words);
            rec.add(RecordHeader::LEN).copy_from_nonoverlapping(payload.as_ptr(), payload.len());
        }
        r.word(at).store(commit_word(pos, discarded), Ordering::Release);
        Some(pos)
    }

    fn payload_of(rec: &[u8]) -> Vec<u8> {
        RecordHeader::parse(rec).expect("a well-formed record").1.to_vec()
    }

    #[test]
    fn records_come_out_in_order_and_free_their_space() {
        let mut r = ring();
        assert!(r.next_record().is_none(), "empty");
        for i in 0..3u8 {
            produce(&r, &[i; 50], false).unwrap();
        }
        for i in 0..3u8 {
            let rec = r.next_record().unwrap();
            assert_eq!(payload_of(&rec), [i; 50]);
        }
        assert!(r.next_record().is_none());
        assert_eq!(r.word(CONSUMER_POS).load(Ordering::Relaxed), 3 * span(72) as u64);
    }

    #[test]
    fn a_record_is_released_only_when_dropped() {
        let mut r = ring();
        produce(&r, b"abc", false).unwrap();
        let rec = r.next_record().unwrap();
        assert_eq!(payload_of(&rec), b"abc");
        assert_eq!(rec.reader.word(CONSUMER_POS).load(Ordering::Relaxed), 0, "not released while held");
        drop(rec);
        assert_eq!(r.word(CONSUMER_POS).load(Ordering::Relaxed), span(48) as u64);
    }

    #[test]
    fn a_record_not_yet_committed_stops_the_reader() {
        let mut r = ring();
        // Reserved (the producer position moved) but its word not written yet.
        r.word(PRODUCER_POS).store(span(72) as u64, Ordering::Relaxed);
        assert!(r.next_record().is_none());
        // A word left from an earlier lap at the same offset is not this record.
        r.word(DATA).store(commit_word(RING_BYTES as u64, false), Ordering::Relaxed);
        assert!(r.next_record().is_none());
        r.word(DATA).store(commit_word(0, false), Ordering::Relaxed);
        assert!(r.next_record().is_some());
    }

    #[test]
    fn discarded_records_are_skipped() {
        let mut r = ring();
        produce(&r, b"lost", true).unwrap();
        produce(&r, b"kept", false).unwrap();
        assert_eq!(payload_of(&r.next_record().unwrap()), b"kept");
        assert!(r.next_record().is_none());
    }

    #[test]
    fn a_full_ring_refuses_then_laps_through_the_slack() {
        let mut r = ring();
        let s = span(72);
        let fit = RING_BYTES / s;
        for i in 0..fit {
            produce(&r, &[i as u8; 50], false).unwrap();
        }
        assert!(produce(&r, &[0; 50], false).is_none(), "full after {fit} records");
        // Read half, then fill again: records cross the end of the ring into
        // the slack and wrap; every one must come out whole and in order.
        let mut expect = 0usize;
        for _ in 0..fit / 2 {
            assert_eq!(payload_of(&r.next_record().unwrap()), [expect as u8; 50]);
            expect += 1;
        }
        let mut next = fit;
        while produce(&r, &[next as u8; 50], false).is_some() {
            next += 1;
        }
        assert!(RING_BYTES % s != 0 && (next * s) as u64 > RING_BYTES as u64, "a record crossed the end");
        while let Some(rec) = r.next_record() {
            assert_eq!(payload_of(&rec), [expect as u8; 50], "record {expect}");
            expect += 1;
        }
        assert_eq!(expect, next);
    }

    #[test]
    fn a_new_reader_continues_at_the_consumer_position() {
        let mut r = ring();
        for p in [b"one", b"two"] {
            produce(&r, p, false).unwrap();
        }
        assert_eq!(payload_of(&r.next_record().unwrap()), b"one");
        // The same memory read afresh (a restarted channel process).
        let mut again = RingReader::over(r.base, Backing::Heap { _words: Vec::new() });
        assert_eq!(payload_of(&again.next_record().unwrap()), b"two");
        assert!(again.next_record().is_none());
    }

    #[test]
    fn an_impossible_length_resynchronises_at_the_producer() {
        let mut r = ring();
        produce(&r, b"first", false).unwrap();
        let bad = produce(&r, b"second", false).unwrap();
        produce(&r, b"third", false).unwrap();
        // Corrupt the second record's length beyond any class.
        // SAFETY: the header's length field, inside the value.
        unsafe { r.base().add(DATA + ring::offset(bad) + COMMIT_LEN + 8).cast::<u16>().write_unaligned(u16::MAX) };
        assert_eq!(payload_of(&r.next_record().unwrap()), b"first");
        assert!(r.next_record().is_none(), "everything up to the producer is skipped");
        assert_eq!(r.corrupt, 1);
        produce(&r, b"fourth", false).unwrap();
        assert_eq!(payload_of(&r.next_record().unwrap()), b"fourth");
    }
}
