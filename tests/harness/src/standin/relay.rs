//! A stand-in for the network path to Vault: a TCP relay on 127.0.0.1 in front of OpenBao that
//! a test cuts and restores. Cut, it closes every open connection and every new one at once, as
//! a dropped route, cluster DNS down or a Service without endpoints look to a client: Vault's
//! process runs on (its clock, `sys/leader`'s `active_time`, does not move), but neither ESO nor
//! eso-recovery can reach it.
//!
//! The same relay also carries the harness into a node's namespaces ([`Relay::into_netns`]): a
//! port on the host's 127.0.0.1 whose every connection is made inside the namespace; and it
//! counts the connections a client opens ([`Relay::connections`]: `make bench`'s TLS
//! connections per run).

use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread::JoinHandle,
};

use crate::{node::netns::Netns, tools::procs::free_port};

/// Opens the upstream side of one relayed connection.
type Connect = Box<dyn Fn() -> io::Result<TcpStream> + Send>;

/// A running relay, stopped (and every connection closed) when dropped.
pub struct Relay {
    /// The address to give clients instead of Vault's.
    pub addr: String,
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    cut: AtomicBool,
    stopping: AtomicBool,
    /// Both ends of every open connection, to close them on a cut.
    open: Mutex<Vec<TcpStream>>,
    /// The connections relayed so far.
    relayed: AtomicUsize,
}

impl Shared {
    fn close_all(&self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for s in open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Relay {
    /// Relays 127.0.0.1:<a free port> to `upstream_port` on 127.0.0.1.
    pub fn start(upstream_port: u16) -> Relay {
        Self::listen(
            free_port(),
            Box::new(move || TcpStream::connect(("127.0.0.1", upstream_port))),
        )
    }

    /// Relays the host's 127.0.0.1:`port` to `upstream` inside `netns`.
    pub fn into_netns(netns: &Netns, port: u16, upstream: std::net::SocketAddr) -> Relay {
        let netns = netns.handle();
        Self::listen(port, Box::new(move || netns.connect(upstream)))
    }

    fn listen(port: u16, connect: Connect) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the relay");
        let shared = Arc::new(Shared::default());
        let state = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if state.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = connect() else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                state.relayed.fetch_add(1, Ordering::SeqCst);
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    let mut open = state.open.lock().unwrap_or_else(|e| e.into_inner());
                    open.retain(|x| x.peer_addr().is_ok());
                    open.extend([c, s]);
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Relay {
            addr: format!("http://127.0.0.1:{port}"),
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// Cuts the path: every connection closed, new ones closed as they come.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Restores the path.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// The connections relayed so far.
    pub fn connections(&self) -> usize {
        self.shared.relayed.load(Ordering::SeqCst)
    }
}

/// Copies `from` into `to` on a thread of its own until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
        let _: io::Result<()> = from.shutdown(Shutdown::Read);
    });
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}
