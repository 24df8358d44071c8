//! Datagrams waiting to be sent, packed into one reusable buffer (no
//! allocation per datagram once warmed up).

#[derive(Debug, Default)]
pub struct OutBatch {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl OutBatch {
    pub fn push(&mut self, datagram: &[u8]) {
        self.buf.extend_from_slice(datagram);
        self.ends.push(self.buf.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// The datagrams from index `from` on, in order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &[u8]> {
        (from..self.ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.buf[start..self.ends[i]]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_boundaries_and_order() {
        let mut b = OutBatch::default();
        b.push(b"ab");
        b.push(b"");
        b.push(b"cde");
        assert_eq!(b.len(), 3);
        assert_eq!(b.iter_from(0).collect::<Vec<_>>(), vec![&b"ab"[..], b"", b"cde"]);
        assert_eq!(b.iter_from(2).collect::<Vec<_>>(), vec![&b"cde"[..]]);
        b.clear();
        assert!(b.is_empty());
    }
}
