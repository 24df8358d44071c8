//! Avro Object Container File framing, byte for byte as the spec says, so
//! that Python `avro`/`fastavro` and avro-js read our files.
//!
//! Datums are appended to a block as the raw bytes that arrived (they were
//! validated already); nothing is decoded or re-encoded.

use std::io;

use crate::config::Codec;

/// The four bytes every container file starts with.
pub const MAGIC: [u8; 4] = *b"Obj\x01";

/// The 16 bytes that close the header and every block of one file.
pub type SyncMarker = [u8; 16];

/// Deflate level: zlib's default, the usual speed/size compromise.
const DEFLATE_LEVEL: u8 = 6;
/// zstd level 0 means the library default (3).
const ZSTD_LEVEL: i32 = 0;

/// The `avro.codec` metadata value for `codec`.
pub fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Null => "null",
        Codec::Deflate => "deflate",
        Codec::Snappy => "snappy",
        Codec::Zstandard => "zstandard",
    }
}

/// Appends `n` as an Avro long (zigzag varint).
pub fn encode_long(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads an Avro long (zigzag varint, at most 10 bytes) at `*pos` and moves
/// past it; `None` if it is cut short or too long. (The validator has its own,
/// which says what was wrong; this one serves code that reads what was
/// validated or written by us.)
#[inline]
pub fn read_long(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw = 0u64;
    let mut shift = 0;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift > 63 {
            return None;
        }
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
        shift += 7;
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    encode_long(b.len() as i64, out);
    out.extend_from_slice(b);
}

/// The file header: magic, the metadata map (`avro.schema` = `schema_json`
/// exactly as given, `avro.codec`) and the sync marker.
pub fn header(schema_json: &str, codec: Codec, sync: &SyncMarker) -> Vec<u8> {
    let mut out = Vec::with_capacity(schema_json.len() + 64);
    out.extend_from_slice(&MAGIC);
    // One map block of two entries, then the terminating empty block.
    encode_long(2, &mut out);
    encode_bytes(b"avro.schema", &mut out);
    encode_bytes(schema_json.as_bytes(), &mut out);
    encode_bytes(b"avro.codec", &mut out);
    encode_bytes(codec_name(codec).as_bytes(), &mut out);
    encode_long(0, &mut out);
    out.extend_from_slice(sync);
    out
}

/// Accumulates datums for one block and frames them on demand. The datums
/// stay until [`BlockBuilder::clear`], so a block whose write failed can be
/// framed again (with whatever arrived since) on the next attempt.
pub struct BlockBuilder {
    codec: Codec,
    data: Vec<u8>,
    count: u64,
    /// Compression output, reused between blocks.
    scratch: Vec<u8>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl BlockBuilder {
    pub fn new(codec: Codec) -> io::Result<Self> {
        let zstd = match codec {
            Codec::Zstandard => Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
            _ => None,
        };
        Ok(BlockBuilder {
            codec,
            data: Vec::new(),
            count: 0,
            scratch: Vec::new(),
            zstd,
        })
    }

    pub fn push(&mut self, datum: &[u8]) {
        self.data.extend_from_slice(datum);
        self.count += 1;
    }

    /// Datums in the pending block.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Uncompressed bytes in the pending block.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Forgets the pending datums (after their block was written).
    pub fn clear(&mut self) {
        self.data.clear();
        self.count = 0;
    }

    /// Appends the framed pending block to `out`: count, byte size, the data
    /// compressed per codec, then `sync`. The tests' one-buffer view of
    /// [`BlockBuilder::frame`], which is what the archive writes.
    #[cfg(test)]
    pub(crate) fn encode(&mut self, sync: &SyncMarker, out: &mut Vec<u8>) -> io::Result<()> {
        let mut prefix = Vec::with_capacity(20);
        let payload = self.frame(&mut prefix)?;
        out.reserve(prefix.len() + payload.len() + sync.len());
        out.extend_from_slice(&prefix);
        out.extend_from_slice(payload);
        out.extend_from_slice(sync);
        Ok(())
    }

    /// Frames the pending block without copying it: appends its count and
    /// byte size to `prefix` and returns its payload (the pending data
    /// itself with the null codec, else the compressed data). The block is
    /// `prefix`, payload, sync marker: the archive writes the three with one
    /// `pwritev` (a copy of every block into one buffer was a third of the
    /// pipeline's time per 1400-byte datum in the cost bench's profile).
    pub fn frame(&mut self, prefix: &mut Vec<u8>) -> io::Result<&[u8]> {
        self.compress()?;
        let payload = self.payload();
        encode_long(self.count as i64, prefix);
        encode_long(payload.len() as i64, prefix);
        Ok(payload)
    }

    /// The payload of the last [`BlockBuilder::frame`] (valid until the
    /// next push or clear).
    pub fn payload(&self) -> &[u8] {
        match self.codec {
            Codec::Null => &self.data,
            _ => &self.scratch,
        }
    }

    /// The compressed pending data into `scratch` (nothing for null).
    fn compress(&mut self) -> io::Result<()> {
        match self.codec {
            Codec::Null => {}
            Codec::Deflate => {
                // Raw RFC 1951 stream, no zlib wrapper, as the spec requires.
                self.scratch = miniz_oxide::deflate::compress_to_vec(&self.data, DEFLATE_LEVEL);
            }
            Codec::Snappy => {
                self.scratch
                    .resize(snap::raw::max_compress_len(self.data.len()), 0);
                let n = snap::raw::Encoder::new()
                    .compress(&self.data, &mut self.scratch)
                    .map_err(io::Error::other)?;
                self.scratch.truncate(n);
                // Avro's snappy framing: a big-endian CRC32 of the uncompressed data.
                let crc = crc32fast::hash(&self.data);
                self.scratch.extend_from_slice(&crc.to_be_bytes());
            }
            Codec::Zstandard => {
                let z = self.zstd.as_mut().expect("zstd context made in new()");
                self.scratch.clear();
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(self.data.len()));
                z.compress_to_buffer(&self.data, &mut self.scratch)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::testutil::{example_datum, example_schema, example_value, EXAMPLE_SCHEMA};
    use apache_avro::types::Value;

    const SYNC: SyncMarker = *b"0123456789abcdef";

    #[test]
    fn encode_long_matches_spec_examples() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0]),
            (-1, &[1]),
            (1, &[2]),
            (-64, &[0x7f]),
            (64, &[0x80, 1]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            ),
            (
                i64::MIN,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1],
            ),
        ];
        for (n, want) in cases {
            let mut out = Vec::new();
            encode_long(*n, &mut out);
            assert_eq!(&out, want, "{n}");
            let mut pos = 0;
            assert_eq!(read_long(want, &mut pos), Some(*n), "{n}");
            assert_eq!(pos, want.len());
        }
        assert_eq!(read_long(&[0x80], &mut 0), None, "cut short");
        assert_eq!(read_long(&[0x80; 11], &mut 0), None, "longer than 10 bytes");
    }

    #[test]
    fn header_layout() {
        let h = header("\"int\"", Codec::Null, &SYNC);
        let mut want = b"Obj\x01\x04".to_vec();
        want.extend_from_slice(b"\x16avro.schema\x0a\"int\"");
        want.extend_from_slice(b"\x14avro.codec\x08null");
        want.push(0);
        want.extend_from_slice(&SYNC);
        assert_eq!(h, want);
    }

    #[test]
    fn block_layout_null_codec() {
        let mut b = BlockBuilder::new(Codec::Null).unwrap();
        b.push(&[2]);
        b.push(&[4, 6]);
        let mut out = Vec::new();
        b.encode(&SYNC, &mut out).unwrap();
        let mut want = vec![4, 6, 2, 4, 6];
        want.extend_from_slice(&SYNC);
        assert_eq!(out, want);
        // Encoding does not consume the datums; clear does.
        assert_eq!(b.count(), 2);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.data_len(), 0);
    }

    fn file_with_blocks(codec: Codec, blocks: &[&[u64]]) -> Vec<u8> {
        let schema = example_schema();
        let mut file = header(EXAMPLE_SCHEMA, codec, &SYNC);
        let mut b = BlockBuilder::new(codec).unwrap();
        for block in blocks {
            for &i in *block {
                b.push(&example_datum(&schema, i));
            }
            b.encode(&SYNC, &mut file).unwrap();
            b.clear();
        }
        file
    }

    #[test]
    fn every_codec_reads_back_exactly() {
        let blocks: &[&[u64]] = &[&[0, 1, 2], &[3], &(4..200).collect::<Vec<_>>()];
        for codec in [Codec::Null, Codec::Deflate, Codec::Snappy, Codec::Zstandard] {
            let file = file_with_blocks(codec, blocks);
            let reader = apache_avro::Reader::new(&file[..]).unwrap();
            let got: Vec<Value> = reader.map(|r| r.unwrap()).collect();
            let want: Vec<Value> = (0..200).map(example_value).collect();
            assert_eq!(got, want, "codec {codec:?}");
        }
    }

    #[test]
    fn header_carries_schema_text_verbatim_and_codec() {
        for codec in [Codec::Null, Codec::Deflate, Codec::Snappy, Codec::Zstandard] {
            let file = file_with_blocks(codec, &[&[7]]);
            let reader = apache_avro::Reader::new(&file[..]).unwrap();
            let meta = reader.user_metadata().clone();
            assert!(meta.is_empty(), "only avro.* keys: {meta:?}");
            // The JSON text is stored byte for byte, whitespace included.
            let mut want = b"\x16avro.schema".to_vec();
            encode_long(EXAMPLE_SCHEMA.len() as i64, &mut want);
            want.extend_from_slice(EXAMPLE_SCHEMA.as_bytes());
            encode_bytes(b"avro.codec", &mut want);
            encode_bytes(codec_name(codec).as_bytes(), &mut want);
            assert_eq!(&file[5..5 + want.len()], &want[..]);
        }
    }

    #[test]
    fn header_only_file_is_valid_and_empty() {
        let file = header(EXAMPLE_SCHEMA, Codec::Deflate, &SYNC);
        let reader = apache_avro::Reader::new(&file[..]).unwrap();
        assert_eq!(reader.count(), 0);
    }
}
