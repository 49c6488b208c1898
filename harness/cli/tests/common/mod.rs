//! What the binary's integration tests share.
#![allow(dead_code)] // each test file uses its own part

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sshspec")
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A scenario that logs in and then waits, so the run is mid-session when the signal comes.
pub const SLOW: &str = r#"title = "slow"
spec = "RFC 4254 §6.1"
clauses = ["4254-6.1-a"]
level = "may"
requirement = "r"
requires = { auth = ["password"] }
[[step]]
do = "version-exchange"
[[step]]
do = "key-exchange"
[[step]]
do = "authenticate"
method = "password"
[[step]]
do = "open-session"
[[step]]
expect = "nothing"
timeout = "30s"
"#;
