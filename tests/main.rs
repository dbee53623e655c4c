//! Integration tests: every test runs its own real daemon (see `support`), real programs,
//! real signals, and the real `svc` binary.

mod support;

mod cli;
mod config_faults;
mod control;
mod docs;
mod import;
mod install;
mod logs;
mod options;
mod properties;
mod protocol;
mod reliability;
mod reload;
mod supervision;
mod terminal;
