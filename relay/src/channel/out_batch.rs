//! Datagrams waiting to be sent, packed into one reusable buffer (no
//! allocation per datagram once warmed up), and when a batch of them is due.

use std::time::{Duration, Instant};

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

/// When waiting datagrams go out: once `batch` of them wait, or once the
/// first of them has waited `delay`. Sans-IO: told how many wait and the
/// time, it says whether to send now, and until when the loop may sleep.
#[derive(Debug)]
pub struct SendWhenDue {
    batch: usize,
    delay: Duration,
    /// When the first of the waiting datagrams is due, while any wait.
    due: Option<Instant>,
}

impl SendWhenDue {
    pub fn new(batch: usize, delay: Duration) -> SendWhenDue {
        SendWhenDue { batch, delay, due: None }
    }

    /// Whether the `waiting` datagrams should go out now. The caller sends
    /// them all when it says so (the next call then sees none waiting).
    pub fn now(&mut self, waiting: usize, now: Instant) -> bool {
        if waiting == 0 {
            self.due = None;
            return false;
        }
        let due = *self.due.get_or_insert(now + self.delay);
        if waiting >= self.batch || now >= due {
            self.due = None;
            return true;
        }
        false
    }

    /// When the loop must look again, while datagrams wait.
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_goes_at_once() {
        let mut w = SendWhenDue::new(4, Duration::from_millis(10));
        let t = Instant::now();
        assert!(!w.now(3, t));
        assert!(w.now(4, t));
        assert_eq!(w.deadline(), None, "nothing waits once sent");
    }

    #[test]
    fn a_partial_batch_waits_for_the_first_ones_delay_not_the_last_ones() {
        let mut w = SendWhenDue::new(64, Duration::from_millis(10));
        let t = Instant::now();
        assert!(!w.now(1, t));
        assert_eq!(w.deadline(), Some(t + Duration::from_millis(10)));
        // More arrive later: the deadline stays the first one's.
        assert!(!w.now(5, t + Duration::from_millis(9)));
        assert_eq!(w.deadline(), Some(t + Duration::from_millis(10)));
        assert!(w.now(5, t + Duration::from_millis(10)));
        // The next one starts its own wait.
        assert!(!w.now(1, t + Duration::from_millis(11)));
        assert_eq!(w.deadline(), Some(t + Duration::from_millis(21)));
    }

    #[test]
    fn sent_elsewhere_means_nothing_is_due() {
        let mut w = SendWhenDue::new(64, Duration::from_millis(10));
        let t = Instant::now();
        assert!(!w.now(2, t));
        // Another path sent them (the drain in XDP mode): no deadline left.
        assert!(!w.now(0, t + Duration::from_millis(1)));
        assert_eq!(w.deadline(), None);
        assert!(!w.now(1, t + Duration::from_millis(2)));
        assert_eq!(w.deadline(), Some(t + Duration::from_millis(12)));
    }

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
