//! sshspec: an SSH protocol conformance harness.
//!
//! A scenario file ([`script`]) drives the scripted peer ([`peer`], over our own [`transport`])
//! against a target server ([`targets`]); each run ends in a verdict with evidence ([`verdict`]),
//! which the [`report`] consumers turn into console output, JUnit and JSON.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod transcript;
pub mod transport;
pub mod script;
