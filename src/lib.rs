//! svc: a rootless, per-user process supervisor.
//!
//! # Layout
//! - [`config`]: KDL files -> a validated [`config::Config`].
//! - [`paths`]: where the config, socket, state and logs live for this user.
//! - [`protocol`]: the JSON-lines messages between the CLI and the daemon.
//! - [`client`]: the CLI's side of the protocol, over the local socket or a relay.
//! - [`remote`]: daemons on other machines, through OpenSSH (`svc -H HOST`).
//! - [`daemon`]: the supervisor itself.
//! - [`cli`]: one module per command family; argument handling and output.
//! - [`web`]: the `svc web` dashboard server, a client of the daemon.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod paths;
pub mod protocol;
pub mod remote;
pub mod suggest;
pub mod web;
