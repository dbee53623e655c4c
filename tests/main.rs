//! Integration tests: every test runs its own real daemon (see `support`), real programs,
//! real signals, and the real `svc` binary.

mod support;

mod cli;
mod compat;
mod config_faults;
mod control;
mod deps;
mod docs;
mod events;
mod faults;
mod import;
mod install;
mod logs;
mod newuser;
mod options;
mod properties;
mod protocol;
mod reliability;
mod reload;
mod remote;
mod request_faults;
mod resources;
mod supervision;
mod terminal;
mod top;
mod web;
