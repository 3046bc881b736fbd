//! The processes of a step: the status channel to the caller, the PID-1 init loop (reaping and
//! signal forwarding), and the child that becomes the RUN command.

pub mod channel;
pub mod exec;
pub mod init;
