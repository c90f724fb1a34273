//! An in-process stand-in for Vault on 127.0.0.1, for the answers a real OpenBao cannot be made to
//! give: Vault-only codes (472, 473, 474, 530), an HTML page, a contradicting body, several MiB,
//! a body that trickles. The real OpenBao covers the rest.

use std::{
    io::{BufRead, BufReader, Write},
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
    /// Starts answering `answer` to every request.
    pub fn start(answer: Answer) -> FakeVault {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let answer = answer.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    seen.lock().unwrap().push(head);
                    let mut s = reader.into_inner();
                    let (code, body, pause) = match answer {
                        Answer::Fixed(c, b) => (c, b, None),
                        Answer::Trickle(c, b, p) => (c, b, Some(p)),
                        Answer::Huge(n) => {
                            (200, format!("{{\"pad\":\"{}\"}}", "x".repeat(n)), None)
                        }
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
                });
            }
        });
        FakeVault { addr, requests }
    }
}
