//! Datums of the example schema (`config/agents/example.avsc`), encoded by
//! hand so the generator can stamp a sequence number (`counter`) and a send
//! time (`time`, ns since the epoch, CLOCK_REALTIME) into every datagram
//! without an allocation, and the receiver can read them back.
//!
//! Binary Avro: `time` long, `message` string, `counter` int, then four
//! doubles (little-endian), all as zig-zag varints where they are integers.

/// The message of the generator's datums; with a 9-byte time and a 3–4 byte
/// counter a datum is about 50 bytes.
pub const MESSAGE: &[u8] = b"bench";

fn varint(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Appends datum `seq` sent at `time_ns`, with `message` as its string field.
pub fn encode(buf: &mut Vec<u8>, seq: u32, time_ns: i64, message: &[u8]) {
    varint(buf, time_ns);
    varint(buf, message.len() as i64);
    buf.extend_from_slice(message);
    varint(buf, i64::from(seq as i32));
    let t = f64::from(seq) / 1000.0;
    for v in [t.sin(), f64::from(seq % 100) / 100.0, if seq % 50 < 25 { 1.0 } else { -1.0 }, 0.25] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

/// A datum of `size` bytes (at most; exactly when the counter's varint allows), the message padded to fit.
pub fn of_size(seq: u32, time_ns: i64, size: usize) -> Vec<u8> {
    let mut msg_len = size.saturating_sub(42);
    loop {
        let mut d = Vec::with_capacity(size + 8);
        encode(&mut d, seq, time_ns, &vec![b'x'; msg_len]);
        if d.len() <= size || msg_len == 0 {
            return d;
        }
        msg_len -= 1;
    }
}

/// `(seq, send time ns)` of a datum made by [`encode`].
pub fn decode(d: &[u8]) -> Option<(u32, i64)> {
    let mut pos = 0;
    let time = read_varint(d, &mut pos)?;
    let len = usize::try_from(read_varint(d, &mut pos)?).ok()?;
    pos += len;
    let seq = read_varint(d, &mut pos)?;
    Some((seq as u32, time))
}

/// CLOCK_REALTIME in ns: the clock both ends of a run read (one machine).
pub fn now_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand encoding is what the relay's validator accepts, and round-trips.
    #[test]
    fn encodes_valid_example_datums() {
        let schema = integration_tests::datum::example_schema();
        let v = relay::avro::DatumValidator::new(&schema).unwrap();
        for seq in [0u32, 1, 63, 64, 100_000, 40_000_000] {
            let mut d = Vec::new();
            encode(&mut d, seq, 1_760_000_000_123_456_789, MESSAGE);
            v.validate(&d).unwrap();
            assert_eq!(decode(&d), Some((seq, 1_760_000_000_123_456_789)));
        }
        for size in [64, 128, 1400] {
            let d = of_size(7, 1_760_000_000_000_000_000, size);
            assert_eq!(d.len(), size);
            v.validate(&d).unwrap();
        }
    }
}
