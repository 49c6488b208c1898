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

/// Checks a report.json against the checked-in schema, listing every violation.
pub fn assert_schema_valid(report: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports/schema/report.v2.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = v.iter_errors(report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "report.json violates its schema: {errors:#?}");
}
