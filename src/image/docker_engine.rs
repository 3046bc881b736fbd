//! A small client for the local Docker Engine API on its unix socket: enough to hand it an
//! image (`POST /images/load`, the body streamed as it is produced) and read the image back
//! (`GET /images/{name}/json`).
//!
//! The socket is `/var/run/docker.sock`, or the path of `DOCKER_HOST=unix://PATH`. HTTP is
//! spoken by the blocking `reqwest` client the registry code already uses, pointed at the
//! socket; the request body is fed from a bounded channel that a producer thread writes into,
//! so an archive of any size is sent with chunked transfer encoding and never held whole.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// Where the engine listens when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// Environment variable naming another engine socket (`unix://PATH`).
pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";

/// Longest reply we read from the engine (load replies are a few lines of JSON).
const MAX_REPLY: u64 = 16 << 20;
/// Size of the chunks handed from the producer to the request body.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between producer and request (bounds memory to about 1 MiB).
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why talking to the Docker engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("DOCKER_HOST={0:?} is not supported: only unix:// sockets are")]
    UnsupportedHost(String),
    #[error("cannot connect to the Docker daemon at unix://{socket}: {reason}")]
    Connect { socket: String, reason: String },
    #[error("Docker daemon at unix://{socket}: {reason}")]
    Transport { socket: String, reason: String },
    /// The engine answered with an error (`errorDetail`, `error` or `message`).
    #[error("Docker daemon: {0}")]
    Api(String),
    #[error("unexpected reply from the Docker daemon: {0}")]
    Protocol(String),
    /// The producer of a streamed request body failed.
    #[error("{0}")]
    Produce(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the engine said it loaded (`Loaded image: NAME` / `Loaded image ID: ID` lines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: Vec<String>,
}

/// A Docker engine reached through its unix socket.
#[derive(Debug)]
pub struct Engine {
    socket: PathBuf,
    client: reqwest::blocking::Client,
}

/// The socket named by a `DOCKER_HOST` value (`None` or empty: the default socket).
pub fn socket_from_host(host: Option<&str>) -> Result<PathBuf, EngineError> {
    match host.map(str::trim) {
        None | Some("") => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) if p.starts_with('/') => Ok(PathBuf::from(p)),
            _ => Err(EngineError::UnsupportedHost(h.to_string())),
        },
    }
}

/// The innermost error message of a chain (for connect errors: the OS error).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Engine {
    /// The engine of `DOCKER_HOST`, or the default socket.
    pub fn from_env() -> Result<Engine, EngineError> {
        let host = std::env::var(DOCKER_HOST_ENV).ok();
        Engine::new(socket_from_host(host.as_deref())?)
    }

    /// The engine listening on `socket`. Nothing is contacted yet.
    pub fn new(socket: PathBuf) -> Result<Engine, EngineError> {
        let client = reqwest::blocking::Client::builder()
            .unix_socket(socket.as_path())
            .connect_timeout(Duration::from_secs(10))
            // A load takes as long as the image is big: no overall deadline.
            .timeout(None)
            .build()
            .map_err(|e| EngineError::Transport {
                socket: socket.display().to_string(),
                reason: root_cause(&e),
            })?;
        Ok(Engine { socket, client })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn url(&self, path: &str) -> String {
        // The host part is not resolved: every connection goes to the socket.
        format!("http://docker{path}")
    }

    fn transport_error(&self, e: reqwest::Error) -> EngineError {
        let socket = self.socket.display().to_string();
        let reason = root_cause(&e);
        if e.is_connect() {
            EngineError::Connect { socket, reason }
        } else {
            EngineError::Transport { socket, reason }
        }
    }

    /// `GET /_ping`: is an engine answering on the socket?
    pub fn ping(&self) -> Result<(), EngineError> {
        let resp = self
            .client
            .get(self.url("/_ping"))
            .timeout(Duration::from_secs(30))
            .send()
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let body = read_limited(resp, 4096)?;
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        if body.trim_ascii() != b"OK" {
            return Err(EngineError::Protocol(format!(
                "/_ping answered {:?}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }

    /// `POST /images/load` with a body written by `produce` while the request is sent
    /// (a docker-archive; the engine reads it as a stream). The producer runs on its own
    /// thread; when it fails the upload is aborted and its error is returned.
    pub fn load_streamed<F>(&self, produce: F) -> Result<LoadReport, EngineError>
    where
        F: FnOnce(&mut dyn Write) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
        let body = reqwest::blocking::Body::new(ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        });
        std::thread::scope(|scope| {
            let producer = scope.spawn(move || {
                let mut w = ChannelWriter {
                    tx,
                    buf: Vec::with_capacity(CHUNK),
                };
                let res = produce(&mut w).and_then(|()| w.flush().map_err(|e| e.into()));
                if let Err(e) = &res {
                    // The reader sees an error, not a short archive: the upload is aborted.
                    let _ = w.tx.send(Err(io::Error::other(e.to_string())));
                }
                res
            });
            let reply = self
                .client
                .post(self.url("/images/load?quiet=1"))
                .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
                .body(body)
                .send();
            let produced = producer
                .join()
                .map_err(|_| EngineError::Protocol("the archive writer panicked".into()))?;
            match (produced, reply) {
                // A producer failing on its own (not because the request went away) is the cause.
                (Err(e), _) if !is_broken_pipe(e.as_ref()) => Err(EngineError::Produce(e)),
                (_, Err(e)) => Err(self.transport_error(e)),
                (Err(e), Ok(_)) => Err(EngineError::Produce(e)),
                (Ok(()), Ok(resp)) => parse_load_reply(resp),
            }
        })
    }

    /// The ID (`sha256:…`) of image `name` in the engine, or `None` when it has none such.
    pub fn image_id(&self, name: &str) -> Result<Option<String>, EngineError> {
        let resp = self
            .client
            .get(self.url(&format!("/images/{name}/json")))
            .timeout(Duration::from_secs(60))
            .send()
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let body = read_limited(resp, MAX_REPLY)?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(api_error(status, &body));
        }
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| EngineError::Protocol(format!("image inspect: {e}")))?;
        match v.get("Id").and_then(|i| i.as_str()) {
            Some(id) => Ok(Some(id.to_string())),
            None => Err(EngineError::Protocol("image inspect has no Id".into())),
        }
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        cur = c.source();
    }
    false
}

fn read_limited(resp: reqwest::blocking::Response, limit: u64) -> Result<Vec<u8>, EngineError> {
    let mut body = Vec::new();
    resp.take(limit)
        .read_to_end(&mut body)
        .map_err(|e| EngineError::Protocol(format!("read reply: {e}")))?;
    Ok(body)
}

/// An error status: the engine's `{"message": …}` when it sent one.
fn api_error(status: reqwest::StatusCode, body: &[u8]) -> EngineError {
    let msg = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    if msg.is_empty() {
        EngineError::Api(format!("HTTP {status}"))
    } else {
        EngineError::Api(one_line(&msg))
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_load_reply(resp: reqwest::blocking::Response) -> Result<LoadReport, EngineError> {
    let status = resp.status();
    let body = read_limited(resp, MAX_REPLY)?;
    if !status.is_success() {
        return Err(api_error(status, &body));
    }
    parse_load_lines(&body)
}

/// The JSON-lines reply of `POST /images/load`: `{"stream": …}` lines, or an error line
/// (`{"errorDetail": {"message": …}, "error": …}`) that fails the whole load.
pub fn parse_load_lines(body: &[u8]) -> Result<LoadReport, EngineError> {
    let mut report = LoadReport::default();
    let text = String::from_utf8_lossy(body);
    // Lines are JSON objects, possibly concatenated without newlines.
    let stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
    for v in stream {
        let v = v.map_err(|e| EngineError::Protocol(format!("load reply: {e}")))?;
        let detail = v
            .get("errorDetail")
            .and_then(|d| d.get("message"))
            .and_then(|m| m.as_str());
        let error = v.get("error").and_then(|m| m.as_str());
        if let Some(msg) = detail.or(error) {
            return Err(EngineError::Api(one_line(msg)));
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            for line in s.lines() {
                let line = line.trim();
                if let Some(n) = line
                    .strip_prefix("Loaded image: ")
                    .or_else(|| line.strip_prefix("Loaded image ID: "))
                {
                    report.loaded.push(n.to_string());
                }
            }
        }
    }
    Ok(report)
}

/// The producer's end: buffers writes into chunks sent over a bounded channel.
struct ChannelWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker daemon stopped reading the image",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// The request body's end: reads chunks until the producer hangs up.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The producer is done (it flushed everything before hanging up).
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_values() {
        assert_eq!(
            socket_from_host(None).unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_from_host(Some("")).unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_from_host(Some("unix:///run/d.sock")).unwrap(),
            PathBuf::from("/run/d.sock")
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "unix://relative",
            "ssh://x",
            "/x.sock",
        ] {
            let e = socket_from_host(Some(bad)).unwrap_err().to_string();
            assert!(e.contains("only unix://"), "{bad}: {e}");
        }
    }

    #[test]
    fn load_replies() {
        let ok = br#"{"stream":"Loaded image: app:1\n"}
{"stream":"Loaded image ID: sha256:abc\n"}"#;
        assert_eq!(
            parse_load_lines(ok).unwrap().loaded,
            vec!["app:1".to_string(), "sha256:abc".to_string()]
        );
        let err = br#"{"stream":"x"}{"errorDetail":{"message":"open /x/manifest.json:\nno such file"},"error":"other"}"#;
        let e = parse_load_lines(err).unwrap_err().to_string();
        assert_eq!(e, "Docker daemon: open /x/manifest.json: no such file");
        let e = parse_load_lines(br#"{"error":"bad tar"}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "Docker daemon: bad tar");
        assert!(matches!(
            parse_load_lines(b"<html>"),
            Err(EngineError::Protocol(_))
        ));
    }

    #[test]
    fn channel_streams_everything_in_order_and_errors_reach_the_reader() {
        let (tx, rx) = sync_channel(2);
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let t = std::thread::spawn(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::new(),
            };
            w.write_all(&data).unwrap();
            w.flush().unwrap();
        });
        let mut r = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, expect);

        let (tx, rx) = sync_channel(2);
        tx.send(Ok(b"abc".to_vec())).unwrap();
        tx.send(Err(io::Error::other("boom"))).unwrap();
        let mut r = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let mut got = Vec::new();
        assert_eq!(r.read_to_end(&mut got).unwrap_err().to_string(), "boom");
    }

    #[test]
    fn no_engine_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let e = Engine::new(sock.clone()).unwrap().ping().unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "cannot connect to the Docker daemon at unix://{}: ",
                sock.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("No such file"), "{msg}");
    }
}
