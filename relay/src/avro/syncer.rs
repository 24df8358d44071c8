//! Syncing closed archive files, and the directories of new ones, to disk on
//! a background thread. An `fdatasync` of a rotated file can take hundreds of
//! ms on a busy disk (the soak saw ring drops at every 3 s rotation while the
//! channel's single thread waited for it); the channel must keep draining its
//! input meanwhile. Failures come back to the archive, which reports them as
//! before, one rotation later.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

enum Job {
    /// `fdatasync`, then close.
    File(File, PathBuf),
    /// `fsync` of a directory (a new name in it).
    Dir(PathBuf),
    /// Answered once every job before it is done.
    Barrier(mpsc::Sender<()>),
}

type Failures = Arc<Mutex<Vec<(PathBuf, io::Error)>>>;

pub struct Syncer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    failures: Failures,
}

impl Syncer {
    pub fn new() -> io::Result<Syncer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let failures: Failures = Arc::default();
        let f = failures.clone();
        let thread = std::thread::Builder::new().name("archive-sync".into()).spawn(move || {
            for job in rx {
                let failed = match job {
                    Job::File(file, path) => file.sync_data().err().map(|e| (path, e)),
                    Job::Dir(dir) => File::open(&dir).and_then(|d| d.sync_all()).err().map(|e| (dir, e)),
                    Job::Barrier(done) => {
                        let _ = done.send(());
                        None
                    }
                };
                if let Some(failure) = failed {
                    f.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
                }
            }
        })?;
        Ok(Syncer { tx: Some(tx), thread: Some(thread), failures })
    }

    /// Syncs and closes `file` (at `path`, for the error) in the background.
    pub fn file(&self, file: File, path: PathBuf) {
        self.send(Job::File(file, path));
    }

    /// Syncs directory `dir` in the background.
    pub fn dir(&self, dir: PathBuf) {
        self.send(Job::Dir(dir));
    }

    /// Waits until everything handed over so far is synced.
    pub fn wait(&self) {
        let (done, wait) = mpsc::channel();
        self.send(Job::Barrier(done));
        let _ = wait.recv();
    }

    /// The syncs that failed since the last call, oldest first.
    pub fn take_failures(&self) -> Vec<(PathBuf, io::Error)> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn send(&self, job: Job) {
        // The thread only ends when `tx` is dropped (in `drop`), so a send cannot fail.
        if let Some(tx) = &self.tx {
            let _ = tx.send(job);
        }
    }
}

impl Drop for Syncer {
    /// Finishes every sync handed over before returning.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::OwnedFd;

    #[test]
    fn syncs_files_and_directories_and_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"data").unwrap();
        let s = Syncer::new().unwrap();
        s.file(f, path.clone());
        s.dir(dir.path().to_path_buf());
        s.wait();
        assert!(s.take_failures().is_empty());
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn reports_a_failed_sync_with_its_path() {
        // fdatasync on a pipe fails (EINVAL).
        let (r, _w) = io::pipe().unwrap();
        let s = Syncer::new().unwrap();
        s.file(File::from(OwnedFd::from(r)), PathBuf::from("/the/pipe"));
        s.wait();
        let failures = s.take_failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, PathBuf::from("/the/pipe"));
        assert!(s.take_failures().is_empty(), "taken once");
    }
}
