//! `sshspec merge`: one report from the reports of shards (`--shard`) or of runs split by target
//! (a CI matrix with one job per server). Every report format is then written from the merged
//! [`Summary`] as if one run had made it. Reports of different scenario files or of another sshspec
//! are refused: their verdicts do not belong in one table.

use crate::run::{Summary, TargetIdentity, TargetSummary};
use crate::shard::Shard;
use crate::verdict::{Outcome, Tally};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A report.json as read back.
pub struct Input {
    pub path: PathBuf,
    pub sshspec_version: String,
    pub summary: Summary,
}

#[derive(Deserialize)]
struct Saved {
    schema_version: u32,
    sshspec_version: String,
    #[serde(flatten)]
    summary: Summary,
}

/// Reads one report.json; only this sshspec's schema can be merged, since every field is re-rendered.
pub fn load(path: &Path) -> Result<Input, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let v: Version =
        serde_json::from_str(&text).map_err(|e| format!("{}: not an sshspec report.json: {e}", path.display()))?;
    if v.schema_version != super::json::SCHEMA_VERSION {
        return Err(format!(
            "{}: schema_version {} (this sshspec merges {})",
            path.display(),
            v.schema_version,
            super::json::SCHEMA_VERSION
        ));
    }
    let saved: Saved =
        serde_json::from_str(&text).map_err(|e| format!("{}: not an sshspec report.json: {e}", path.display()))?;
    debug_assert_eq!(saved.schema_version, v.schema_version);
    Ok(Input { path: path.to_owned(), sshspec_version: saved.sshspec_version, summary: saved.summary })
}

/// Joins the inputs; refuses mixed versions or scenario sets, a pair judged twice, and an
/// incomplete set of shards.
pub fn merge(inputs: Vec<Input>) -> Result<Summary, String> {
    let first = inputs.first().ok_or("nothing to merge: name at least one report.json")?;
    let ours = env!("CARGO_PKG_VERSION");
    for i in &inputs {
        if i.sshspec_version != first.sshspec_version || i.sshspec_version != ours {
            return Err(format!(
                "{} was written by sshspec {}, {} by sshspec {}; this is sshspec {ours}: merge reports of one sshspec, with that sshspec",
                first.path.display(),
                first.sshspec_version,
                i.path.display(),
                i.sshspec_version
            ));
        }
        if i.summary.scenario_set != first.summary.scenario_set {
            return Err(format!(
                "{} ran other scenario files than {} (set {} of {} scenario(s) against {} of {}): merge runs of the same scenarios",
                i.path.display(),
                first.path.display(),
                short(&i.summary.scenario_set.digest),
                i.summary.scenario_set.count,
                short(&first.summary.scenario_set.digest),
                first.summary.scenario_set.count
            ));
        }
    }
    let shards = check_shards(&inputs)?;
    let mut by_pair: BTreeMap<(String, String), &Path> = BTreeMap::new();
    for i in &inputs {
        for r in &i.summary.results {
            if let Some(other) = by_pair.insert((r.target.clone(), r.scenario.clone()), &i.path) {
                return Err(format!(
                    "{} against {} is in both {} and {}: each pair must come from one report",
                    r.scenario,
                    r.target,
                    other.display(),
                    i.path.display()
                ));
            }
        }
    }
    let mut merged = Summary {
        scenario_set: first.summary.scenario_set.clone(),
        targets: Vec::new(),
        results: Vec::new(),
        duration_ms: 0,
        interrupted: false,
        shard: None,
        merged_shards: shards,
    };
    let mut targets: Vec<TargetSummary> = Vec::new();
    for i in inputs {
        // Shards run side by side: the merged run took as long as the longest.
        merged.duration_ms = merged.duration_ms.max(i.summary.duration_ms);
        merged.interrupted |= i.summary.interrupted;
        merged.results.extend(i.summary.results);
        for t in i.summary.targets {
            match targets.iter_mut().find(|m| m.name == t.name) {
                None => targets.push(t),
                Some(m) => join_target(m, t),
            }
        }
    }
    // As one run orders them: by target in the order first met, then by scenario id.
    let position = |name: &str| targets.iter().position(|t| t.name == name).unwrap_or(usize::MAX);
    merged.results.sort_by(|a, b| (position(&a.target), &a.scenario).cmp(&(position(&b.target), &b.scenario)));
    for t in &mut targets {
        let mine: Vec<_> = merged.results.iter().filter(|r| r.target == t.name).cloned().collect();
        let mut tally = Tally::default();
        mine.iter().for_each(|r| tally.add(r.outcome));
        t.tally = tally;
        t.identity = TargetIdentity::from_results(&mine);
        t.load_sensitive = mine.iter().filter(|r| r.first_attempt.is_some() && r.outcome == Outcome::Pass).count();
    }
    merged.targets = targets;
    Ok(merged)
}

/// The same target seen by two shards: one target in the report, timed as the longer of the two.
fn join_target(m: &mut TargetSummary, t: TargetSummary) {
    m.duration_ms = m.duration_ms.max(t.duration_ms);
    m.start_ms = m.start_ms.max(t.start_ms);
    m.scenarios_ms = m.scenarios_ms.max(t.scenarios_ms);
    if m.version.is_empty() {
        m.version = t.version;
    }
    if m.banner.is_empty() {
        m.banner = t.banner;
    }
    if m.unavailable.is_none() {
        m.unavailable = t.unavailable;
    }
    if m.profile.is_none() {
        m.profile = t.profile;
    }
}

/// The shards the inputs hold: all of one count, none twice, none missing. Reports of whole runs
/// (no shard) are merged as they are: a CI matrix may split by target instead.
fn check_shards(inputs: &[Input]) -> Result<Vec<Shard>, String> {
    let mut seen: Vec<(Shard, &Path)> = Vec::new();
    for i in inputs {
        let held: Vec<Shard> = i.summary.shard.into_iter().chain(i.summary.merged_shards.iter().copied()).collect();
        for s in held {
            if let Some((_, other)) = seen.iter().find(|(o, _)| o.index == s.index && o.count == s.count) {
                return Err(format!("shard {s} is in both {} and {}", other.display(), i.path.display()));
            }
            if let Some((o, other)) = seen.iter().find(|(o, _)| o.count != s.count) {
                return Err(format!(
                    "{} holds shard {o} but {} holds shard {s}: shards of different splits do not fit together",
                    other.display(),
                    i.path.display()
                ));
            }
            seen.push((s, &i.path));
        }
    }
    let Some(count) = seen.first().map(|(s, _)| s.count) else { return Ok(Vec::new()) };
    let missing: Vec<String> =
        (0..count).filter(|k| !seen.iter().any(|(s, _)| s.index == *k)).map(|k| format!("{}/{count}", k + 1)).collect();
    if !missing.is_empty() {
        return Err(format!("shard(s) {} missing: merge the reports of all {count} shards", missing.join(", ")));
    }
    let mut shards: Vec<Shard> = seen.into_iter().map(|(s, _)| s).collect();
    shards.sort_by_key(|s| s.index);
    Ok(shards)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
