//! The exit codes of `sshspec`, documented in the README.

/// Every scenario run PASSed, XFAILed or was SKIPped.
pub const OK: u8 = 0;
/// A target did not conform: some scenario FAILed or XPASSed.
pub const NONCONFORMING: u8 = 1;
/// Bad input from the user: a malformed scenario file, an unknown target, a bad flag.
pub const USAGE: u8 = 2;
/// The harness could not judge: a target did not start, or a scenario ended in ERROR.
pub const HARNESS: u8 = 3;
/// The run was interrupted (SIGINT or SIGTERM); partial reports were written.
pub const INTERRUPTED: u8 = 130;
