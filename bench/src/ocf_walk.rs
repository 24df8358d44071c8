//! Walking an Avro object container file block by block without decoding
//! records: header (magic, metadata, sync marker), then each block's record
//! count, byte size and trailing sync marker, up to the exact end. Cheap
//! enough to check every file of a soak at full speed; fastavro decodes a
//! sample of them fully (see `soak`). Varints are read with the relay's
//! `ocf::read_long`, the rest is written out here from the Avro spec.

use anyhow::{bail, Context, Result};
use relay::avro::ocf::read_long;

/// The number of records in the container file `bytes`; an error says where
/// and how the file is not a complete, well-formed container.
pub fn records(bytes: &[u8]) -> Result<u64> {
    if bytes.get(..4) != Some(b"Obj\x01") {
        bail!("no Avro magic at byte 0");
    }
    let mut pos = 4;
    let long = |pos: &mut usize, what: &str| read_long(bytes, pos).with_context(|| format!("{what} at byte {pos}"));
    // Metadata: a map of string → bytes, in blocks; a negative count is followed by the block's size.
    loop {
        let mut n = long(&mut pos, "metadata block count")?;
        if n == 0 {
            break;
        }
        if n < 0 {
            n = -n;
            long(&mut pos, "metadata block size")?;
        }
        for _ in 0..n {
            for what in ["metadata key", "metadata value"] {
                let len = usize::try_from(long(&mut pos, what)?).context("negative length")?;
                pos = pos.checked_add(len).filter(|&p| p <= bytes.len()).with_context(|| format!("{what} runs past the end"))?;
            }
        }
    }
    let sync = bytes.get(pos..pos + 16).context("file ends inside the header's sync marker")?;
    pos += 16;
    let mut total = 0u64;
    while pos < bytes.len() {
        let start = pos;
        let count = long(&mut pos, "block count")?;
        let size = long(&mut pos, "block size")?;
        let (Ok(count), Ok(size)) = (u64::try_from(count), usize::try_from(size)) else {
            bail!("negative block count or size in the block at byte {start}");
        };
        pos = pos.checked_add(size).filter(|&p| p + 16 <= bytes.len()).with_context(|| format!("the block at byte {start} runs past the end"))?;
        if &bytes[pos..pos + 16] != sync {
            bail!("the block at byte {start} does not end with the file's sync marker");
        }
        pos += 16;
        total += count;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container written by the apache-avro crate (not by the relay).
    fn container(n: usize) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(r#"{"type":"record","name":"r","fields":[{"name":"x","type":"long"}]}"#).unwrap();
        let mut w = apache_avro::Writer::new(&schema, Vec::new()).unwrap();
        for i in 0..n {
            w.append_value(apache_avro::types::Value::Record(vec![("x".into(), apache_avro::types::Value::Long(i as i64))])).unwrap();
            if i % 100 == 99 {
                w.flush().unwrap();
            }
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn counts_records_over_blocks() {
        assert_eq!(records(&container(0)).unwrap(), 0);
        assert_eq!(records(&container(250)).unwrap(), 250);
    }

    #[test]
    fn refuses_cut_or_damaged_files() {
        let f = container(250);
        assert!(records(&f[..f.len() - 1]).is_err(), "cut in the last sync marker");
        assert!(records(&f[..f.len() - 20]).is_err(), "cut inside a block");
        let mut bad = f.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(records(&bad).is_err(), "damaged sync marker");
        assert!(records(b"Obj\x02").is_err());
    }
}
