//! A multicast subscriber on the subscriber host: joins a group on its
//! interface and collects every datagram until told to stop.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::netns::Netns;

pub struct Received {
    pub payload: Vec<u8>,
    pub source: SocketAddr,
}

pub struct Subscriber {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    handle: std::thread::JoinHandle<Vec<Received>>,
}

impl Subscriber {
    /// Joins `group` on the interface with address `iface_addr`, inside `ns`.
    /// Returns once the socket is joined.
    pub fn start(ns: &Netns, group: SocketAddrV4, iface_addr: Ipv4Addr) -> Subscriber {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop2 = stop.clone();
        let count = Arc::new(AtomicUsize::new(0));
        let count2 = count.clone();
        let handle = ns.spawn(move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            s.set_reuse_address(true).unwrap();
            s.set_recv_buffer_size(32 << 20).unwrap();
            s.bind(&SocketAddrV4::new(*group.ip(), group.port()).into()).unwrap();
            s.join_multicast_v4(group.ip(), &iface_addr).unwrap();
            let sock: UdpSocket = s.into();
            sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 65536];
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, source)) => {
                        got.push(Received { payload: buf[..n].to_vec(), source });
                        count2.store(got.len(), Ordering::Relaxed);
                    }
                    Err(_) if stop2.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            got
        });
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("subscriber did not start");
        Subscriber { stop, count, handle }
    }

    /// How many datagrams it has received so far.
    pub fn received(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops after the socket has been idle (everything queued is read first).
    pub fn finish(self) -> Vec<Received> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("subscriber thread panicked")
    }
}
