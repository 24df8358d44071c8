//! The channel children: spawn, forward their output line by line with the
//! channel name, restart with backoff, stop them on SIGTERM/SIGINT.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use super::backoff::Backoff;
use crate::config::Config;

/// How long a child may take to flush and close its files after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub async fn supervise(cfg: &Config) -> Result<()> {
    let exe = std::env::current_exe().context("locating our own executable")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for ch in &cfg.channels {
        let cmd = ChildSpec { exe: exe.clone(), config: cfg.source.clone(), name: ch.name.clone() };
        tasks.spawn(keep_running(cmd, stop_rx.clone()));
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM: stopping channels"),
        _ = int.recv() => log::info!("SIGINT: stopping channels"),
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    log::info!("all channels stopped");
    Ok(())
}

#[derive(Clone)]
struct ChildSpec {
    exe: std::path::PathBuf,
    config: std::path::PathBuf,
    name: String,
}

impl ChildSpec {
    fn spawn(&self) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("channel").arg("--config").arg(&self.config).arg("--name").arg(&self.name);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            cmd.pre_exec(|| {
                // A child never outlives the supervisor: it gets SIGTERM (and
                // closes its files) when we die, even by SIGKILL.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The supervisor may have died between fork and prctl.
                if libc::getppid() == 1 {
                    libc::raise(libc::SIGTERM);
                }
                Ok(())
            });
        }
        cmd.spawn()
    }
}

async fn keep_running(spec: ChildSpec, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::default();
    loop {
        let started = Instant::now();
        let mut child = match spec.spawn() {
            Ok(c) => c,
            Err(e) => {
                log::error!("channel {}: cannot start: {e}", spec.name);
                let delay = backoff.after_exit(Duration::ZERO);
                if wait_or_stop(delay, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let pid = child.id().unwrap_or(0);
        log::info!("channel {}: started (pid {pid})", spec.name);
        forward(child.stdout.take(), spec.name.clone());
        forward(child.stderr.take(), spec.name.clone());
        let status = tokio::select! {
            s = child.wait() => s,
            _ = stop.changed() => {
                stop_child(&mut child, &spec.name).await;
                return;
            }
        };
        let ran = started.elapsed();
        let delay = backoff.after_exit(ran);
        match status {
            Ok(s) => log::error!(
                "channel {}: exited ({s}) after {:.1} s; restarting in {} ms",
                spec.name,
                ran.as_secs_f64(),
                delay.as_millis()
            ),
            Err(e) => log::error!("channel {}: wait failed: {e}", spec.name),
        }
        if wait_or_stop(delay, &mut stop).await {
            return;
        }
    }
}

/// Sleeps for `delay`; true if asked to stop meanwhile.
async fn wait_or_stop(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn stop_child(child: &mut Child, name: &str) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(Ok(s)) if s.success() => log::info!("channel {name}: stopped"),
        Ok(Ok(s)) => log::warn!("channel {name}: stopped ({s})"),
        Ok(Err(e)) => log::warn!("channel {name}: {e}"),
        Err(_) => {
            log::error!("channel {name}: did not stop within {STOP_GRACE:?}; killing it");
            let _ = child.kill().await;
        }
    }
}

/// Copies a child's output to ours, line by line, prefixed with its channel.
/// Read continuously so a chatty child never blocks on a full pipe.
fn forward(stream: Option<impl AsyncRead + Unpin + Send + 'static>, name: String) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
}
