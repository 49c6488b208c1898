//! Splitting one run into N shards that CI job matrices or Kubernetes Indexed Jobs run apart, and
//! whose reports `sshspec merge` joins. The split is a pure function of the target names, the
//! scenarios and N, so every shard computes the same assignment without talking to the others,
//! and the N parts together hold every (target, scenario) pair exactly once.

use crate::script::Scenario;
use std::time::Duration;

/// One part of a run: `index` counts from 0 (Kubernetes' `JOB_COMPLETION_INDEX`); people and
/// GitLab's `CI_NODE_INDEX` count from 1, which [`Shard::parse`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `K/N` with K counted from 1 (`--shard 2/3`: the second of three).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (k, n) = Self::numbers(s)?;
        if k == 0 || k > n {
            return Err(format!("shard {s:?}: K must be 1 to {n} in K/N (for an index from 0, use --shard-index)"));
        }
        Ok(Shard { index: k - 1, count: n })
    }

    /// `I/N` with I counted from 0 (`--shard-index $(JOB_COMPLETION_INDEX)/3`).
    pub fn parse_index(s: &str) -> Result<Self, String> {
        let (i, n) = Self::numbers(s)?;
        if i >= n {
            return Err(format!("shard index {s:?}: I must be 0 to {} in I/N", n - 1));
        }
        Ok(Shard { index: i, count: n })
    }

    fn numbers(s: &str) -> Result<(usize, usize), String> {
        let bad = || format!("shard {s:?}: expected two numbers K/N, such as 1/3");
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let (a, b) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?);
        if b == 0 {
            return Err(format!("shard {s:?}: N must be at least 1"));
        }
        Ok((a, b))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// What a scenario costs beyond its deliberate waits and data: a connection, a handshake, a few
/// round trips. Without it the many scenarios whose cost estimate is zero would not spread.
const PER_SCENARIO: Duration = Duration::from_millis(150);
/// What a target costs a shard that runs any of its scenarios: starting it and probing it. A
/// shard that already has the target pays nothing more, so targets stay together where the
/// balance allows.
const PER_TARGET: Duration = Duration::from_secs(2);

/// For each target (in the order given) the indices of the scenarios this shard runs against it.
///
/// Longest processing time first: pairs in decreasing cost (ties by target, then scenario id), each
/// to the shard whose load after taking it is least (ties to the lowest index). Within 4/3 of the
/// best possible balance, and deterministic.
pub fn assign(targets: &[String], scenarios: &[Scenario], shard: Shard) -> Vec<Vec<usize>> {
    let mut pairs: Vec<(Duration, usize, usize)> = Vec::with_capacity(targets.len() * scenarios.len());
    for t in 0..targets.len() {
        for (s, sc) in scenarios.iter().enumerate() {
            pairs.push((PER_SCENARIO + sc.expected_cost(), t, s));
        }
    }
    pairs.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| targets[a.1].cmp(&targets[b.1]))
            .then_with(|| scenarios[a.2].id.cmp(&scenarios[b.2].id))
    });
    let mut load = vec![Duration::ZERO; shard.count];
    let mut has = vec![vec![false; targets.len()]; shard.count];
    let mut mine = vec![Vec::new(); targets.len()];
    for (cost, t, s) in pairs {
        let after = |k: usize| load[k] + cost + if has[k][t] { Duration::ZERO } else { PER_TARGET };
        let k = (0..shard.count).min_by_key(|&k| (after(k), k)).unwrap_or(0);
        load[k] = after(k);
        has[k][t] = true;
        if k == shard.index {
            mine[t].push(s);
        }
    }
    for m in &mut mine {
        m.sort_unstable();
    }
    mine
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Vec<Scenario> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        crate::script::load_dir(&dir).expect("the catalogue loads")
    }

    #[test]
    fn parses_both_counts() {
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse_index("0/3"), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(Shard::parse("1/3").map(|s| s.to_string()), Ok("1/3".into()));
        for bad in ["0/3", "4/3", "1/0", "x/3", "3", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert!(Shard::parse_index("3/3").is_err());
    }

    #[test]
    fn shards_cover_every_pair_once_and_balance() {
        let scenarios = catalogue();
        let targets: Vec<String> = ["builtin", "openssh", "dropbear"].map(String::from).to_vec();
        for n in [1, 2, 3, 7] {
            let parts: Vec<Vec<Vec<usize>>> =
                (0..n).map(|i| assign(&targets, &scenarios, Shard { index: i, count: n })).collect();
            let mut seen = vec![vec![0u8; scenarios.len()]; targets.len()];
            let mut loads = Vec::new();
            for part in &parts {
                let mut load = Duration::ZERO;
                for (t, list) in part.iter().enumerate() {
                    for &s in list {
                        seen[t][s] += 1;
                        load += PER_SCENARIO + scenarios[s].expected_cost();
                    }
                }
                loads.push(load);
            }
            assert!(seen.iter().flatten().all(|&c| c == 1), "{n} shards: every pair exactly once");
            let (max, min) = (loads.iter().max().unwrap(), loads.iter().min().unwrap());
            // The costliest single scenario bounds how even the split can be.
            let biggest = scenarios.iter().map(|s| PER_SCENARIO + s.expected_cost()).max().unwrap();
            assert!(*max - *min <= biggest + PER_TARGET * targets.len() as u32, "{n} shards: {loads:?}");
            // The same inputs give the same split.
            assert_eq!(parts[0], assign(&targets, &scenarios, Shard { index: 0, count: n }));
        }
    }
}
