//! Integration tests: every test runs its own real daemon (see `support`), real programs,
//! real signals, and the real `svc` binary.

mod support;

mod cli;
mod control;
mod logs;
mod options;
mod protocol;
mod reload;
mod supervision;
