//! sshspec: an SSH protocol conformance harness.
//!
//! A scenario file ([`script`]) drives the scripted peer ([`peer`], over our own [`transport`])
//! against a target server ([`targets`]); the [`run`]ner turns each run into a result
//! ([`verdict`]) and emits events that the [`report`] consumers write out.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod exit;
pub mod fleet;
pub mod keys;
pub mod matrix;
pub mod peer;
pub mod report;
pub mod run;
pub mod script;
pub mod server;
pub mod shard;
pub mod targets;
pub mod transcript;
pub mod transport;
pub mod validate;
pub mod verdict;
