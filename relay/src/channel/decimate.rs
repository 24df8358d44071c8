//! Decimation: which datums go to the decimated stream. Pure logic, driven by
//! one call per valid datum, so it is tested without sockets or clocks.

use super::out_batch::OutBatch;
use crate::config::{Algorithm, Decimation};

/// A count-window decimator. `downsample` keeps the last datum of each window
/// of `factor` datums (factor 1 keeps every datum).
#[derive(Debug)]
pub struct Decimator {
    factor: u32,
    /// Datums seen in the current window.
    filled: u32,
    /// The last datum of the current window (emitted when the window closes
    /// or is cut short).
    last: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("decimation algorithm {0:?} is not supported by this build (supported: downsample)")]
pub struct UnsupportedAlgorithm(pub Algorithm);

impl Decimator {
    /// `None` when decimation is disabled.
    pub fn new(cfg: &Decimation) -> Result<Option<Decimator>, UnsupportedAlgorithm> {
        if !cfg.enabled {
            return Ok(None);
        }
        if cfg.algorithm != Algorithm::Downsample {
            return Err(UnsupportedAlgorithm(cfg.algorithm));
        }
        Ok(Some(Decimator { factor: cfg.factor.max(1), filled: 0, last: Vec::new() }))
    }

    /// Feeds one valid datum; a closing window adds its output datum to `out`.
    pub fn push(&mut self, datum: &[u8], out: &mut OutBatch) {
        self.filled += 1;
        if self.filled == self.factor {
            self.filled = 0;
            out.push(datum);
        } else {
            self.last.clear();
            self.last.extend_from_slice(datum);
        }
    }

    /// Closes a window cut short (shutdown, reload), adding its output to `out`.
    pub fn flush(&mut self, out: &mut OutBatch) {
        if self.filled != 0 {
            self.filled = 0;
            out.push(&self.last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn downsample(factor: u32) -> Decimator {
        let cfg = Decimation { enabled: true, factor, algorithm: Algorithm::Downsample };
        Decimator::new(&cfg).unwrap().unwrap()
    }

    fn run(d: &mut Decimator, n: u8) -> Vec<u8> {
        let mut out = OutBatch::default();
        (0..n).for_each(|i| d.push(&[i], &mut out));
        out.iter_from(0).map(|o| o[0]).collect()
    }

    fn flush(d: &mut Decimator) -> Vec<u8> {
        let mut out = OutBatch::default();
        d.flush(&mut out);
        out.iter_from(0).map(|o| o[0]).collect()
    }

    #[test]
    fn keeps_last_of_each_window() {
        assert_eq!(run(&mut downsample(5), 20), vec![4, 9, 14, 19]);
    }

    #[test]
    fn factor_one_keeps_everything() {
        assert_eq!(run(&mut downsample(1), 4), vec![0, 1, 2, 3]);
    }

    #[test]
    fn cut_short_window_is_emitted_once() {
        let mut d = downsample(4);
        assert_eq!(run(&mut d, 6), vec![3]);
        assert_eq!(flush(&mut d), vec![5]);
        assert!(flush(&mut d).is_empty());
        // The next window starts empty.
        assert_eq!(run(&mut d, 4), vec![3]);
    }

    #[test]
    fn full_window_leaves_nothing_to_flush() {
        let mut d = downsample(3);
        run(&mut d, 6);
        assert!(flush(&mut d).is_empty());
    }

    #[test]
    fn disabled_is_none_and_other_algorithms_are_refused() {
        let off = Decimation { enabled: false, factor: 5, algorithm: Algorithm::Average };
        assert!(Decimator::new(&off).unwrap().is_none());
        let avg = Decimation { enabled: true, factor: 5, algorithm: Algorithm::Average };
        let err = Decimator::new(&avg).unwrap_err().to_string();
        assert!(err.contains("Average") && err.contains("downsample"), "{err}");
    }
}
