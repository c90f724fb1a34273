//! An in-process stand-in for Vault on 127.0.0.1, for the answers a real OpenBao cannot be made to
//! give: Vault-only codes (472, 473, 474, 530), an HTML page, a contradicting body, several MiB,
//! a body that trickles. The real OpenBao covers the rest.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};

/// How the stand-in answers every request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This code and body.
    Fixed(u16, String),
    /// This code, then the body one byte every `pause`.
    Trickle(u16, String, Duration),
    /// A 200 with a body of this many bytes.
    Huge(usize),
}

/// A running stand-in; its listener thread ends with the test process.
pub struct FakeVault {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// Each request's first line and headers, as received.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// A body as Vault writes it for an active node.
pub const ACTIVE: &str = r#"{"initialized":true,"sealed":false,"standby":false,"performance_standby":false,"version":"1.17.0"}"#;

impl FakeVault {
    /// Starts answering `answer` to every request, over plain HTTP.
    pub fn start(answer: Answer) -> FakeVault {
        Self::listen(answer, None)
    }

    /// The same over TLS, with this certificate chain and key (PEM): for certificates OpenBao's
    /// dev mode will not make, such as an expired one.
    pub fn start_tls(answer: Answer, cert_pem: &str, key_pem: &str) -> FakeVault {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        Self::listen(answer, Some(Arc::new(config)))
    }

    fn listen(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = format!("{scheme}://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (answer, seen, tls) = (answer.clone(), seen.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &answer, &seen),
                    Some(config) => {
                        if let Ok(conn) = rustls::ServerConnection::new(config) {
                            serve(rustls::StreamOwned::new(conn, stream), &answer, &seen);
                        }
                    }
                });
            }
        });
        FakeVault { addr, requests }
    }
}

/// Reads one request's head, records it, and writes the answer.
fn serve<S: Read + Write>(stream: S, answer: &Answer, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    if head.is_empty() {
        return;
    }
    seen.lock().unwrap().push(head);
    let mut s = reader.into_inner();
    let (code, body, pause) = match answer.clone() {
        Answer::Fixed(c, b) => (c, b, None),
        Answer::Trickle(c, b, p) => (c, b, Some(p)),
        Answer::Huge(n) => (200, format!("{{\"pad\":\"{}\"}}", "x".repeat(n)), None),
    };
    let _ = write!(
        s,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    match pause {
        None => {
            let _ = s.write_all(body.as_bytes());
        }
        Some(p) => {
            for b in body.bytes() {
                if s.write_all(&[b]).and_then(|()| s.flush()).is_err() {
                    break;
                }
                std::thread::sleep(p);
            }
        }
    }
    let _ = s.flush();
}
