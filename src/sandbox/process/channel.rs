//! The status channel: one JSON message per line on the descriptor the helper inherits as fd 3.
//! The helper reports either a setup error or how the command ended; the caller takes the
//! first message.

use serde::{Deserialize, Serialize};
use std::io::Write;

/// The descriptor number the helper finds the status pipe on.
pub const STATUS_FD: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Status {
    /// The sandbox could not be set up, or the command could not be started.
    Error { message: String },
    /// The command exited with this code.
    Exit { code: i32 },
    /// The command was killed by this signal.
    Signal { signal: i32 },
}

/// Send one message (best effort: a caller that is gone cannot be told anything).
pub fn send(w: &mut impl Write, s: &Status) {
    if let Ok(mut line) = serde_json::to_vec(s) {
        line.push(b'\n');
        let _ = w.write_all(&line);
        let _ = w.flush();
    }
}

/// The first message of everything read from the channel, if any.
pub fn first(bytes: &[u8]) -> Option<Status> {
    bytes
        .split(|b| *b == b'\n')
        .find_map(|l| serde_json::from_slice(l).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_first_wins() {
        let mut buf = Vec::new();
        send(&mut buf, &Status::Exit { code: 3 });
        send(
            &mut buf,
            &Status::Error {
                message: "late".into(),
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&buf).lines().next(),
            Some(r#"{"type":"exit","code":3}"#)
        );
        assert_eq!(first(&buf), Some(Status::Exit { code: 3 }));
        assert_eq!(first(b"garbage\n"), None);
    }
}
