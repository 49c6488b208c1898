//! `report.json`: every result with its evidence and transcript. The shape is versioned by
//! `schema_version`; consumers must check it.

use crate::run::Summary;
use serde::Serialize;
use std::path::Path;

/// Bumped whenever a field is removed or changes meaning (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
struct Report<'a> {
    schema_version: u32,
    sshspec_version: &'static str,
    generated_at: String,
    #[serde(flatten)]
    summary: &'a Summary,
}

pub fn write(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let r = Report {
        schema_version: SCHEMA_VERSION,
        sshspec_version: env!("CARGO_PKG_VERSION"),
        generated_at: super::utc_stamp(std::time::SystemTime::now()),
        summary,
    };
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(f, &r).map_err(std::io::Error::other)
}
