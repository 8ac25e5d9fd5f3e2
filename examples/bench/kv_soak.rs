//! `bench_kv --soak N`: the store under connection churn, as a service's
//! clients come and go (connection pools recycling, scripts connecting once
//! per command). `redis-benchmark -t set -c 50 -k 0` (a new connection for
//! every request, one key) for `N` requests in steps, printing every
//! instance's resident memory after each; then a steady load (50 clients
//! that keep their connections) over as many requests, for comparison.
//!
//! With `--max-growth-mib M`, fails if an instance's memory grew by `M` MiB
//! or more between the first step and the last of the churn (memory that
//! grows with every connection ever made), or if an instance died.

use crate::{start_store, Target};
use std::process::{Command, Stdio};

/// How the soak is run.
pub struct Soak {
    pub requests: u64,
    pub steps: u64,
    pub max_growth_mib: Option<u64>,
}

impl Soak {
    /// `--soak N [--steps S] [--max-growth-mib M]` from the arguments, if
    /// `--soak` is among them.
    pub fn from_args(args: &[String]) -> Result<Option<Soak>, String> {
        let value = |flag: &str| -> Result<Option<u64>, String> {
            match args.iter().position(|a| a == flag) {
                None => Ok(None),
                Some(i) => {
                    let text = args.get(i + 1).ok_or(format!("{flag} needs a number"))?;
                    let n = text
                        .replace('_', "")
                        .parse()
                        .map_err(|_| format!("{flag} {text}: not a number"))?;
                    Ok(Some(n))
                }
            }
        };
        let Some(requests) = value("--soak")? else {
            return Ok(None);
        };
        let steps = value("--steps")?.unwrap_or(10).max(2);
        Ok(Some(Soak {
            requests,
            steps,
            max_growth_mib: value("--max-growth-mib")?,
        }))
    }

    pub async fn run(&self) -> Result<(), String> {
        let store = start_store(None, "flush").await?;
        let target = Target {
            address: store.endpoint("proposer", "clients")[0].clone(),
            secured: None,
            processes: store.local_processes(),
        };
        target.wait_for_ping()?;
        let processes = &target.processes;
        let names: Vec<&str> = processes.iter().map(|(n, _)| n.as_str()).collect();
        println!(
            "paxos_kv under `redis-benchmark -t set -c 50 -k 0` (a new connection per request, one key), then \
             `-k 1` (50 connections kept), {} requests each, in {} steps; resident memory (VmRSS) in MiB\n",
            self.requests, self.steps
        );
        println!("| load | requests | {} |", names.join(" | "));
        println!("|---|---|{}", "---|".repeat(names.len()));
        let step = (self.requests / self.steps).max(1);
        let mut churn = Vec::new();
        for (load, keep_alive) in [("reconnecting", "0"), ("steady", "1")] {
            for s in 1..=self.steps {
                target.churn(step, keep_alive)?;
                let rss = resident_mib(processes)?;
                let cells: Vec<String> = rss.iter().map(|r| format!("{r:.1}")).collect();
                println!("| {load} | {} | {} |", s * step, cells.join(" | "));
                if keep_alive == "0" {
                    churn.push(rss);
                }
            }
        }
        store.stop();
        let stopped = store.wait().await;
        let _ = std::fs::remove_dir_all(crate::state_dir());
        stopped.map_err(|e| format!("the store did not stop cleanly: {e}"))?;
        if let (Some(limit), Some(first), Some(last)) =
            (self.max_growth_mib, churn.first(), churn.last())
        {
            for (name, (a, b)) in names.iter().zip(first.iter().zip(last)) {
                if b - a >= limit as f64 {
                    return Err(format!(
                        "{name} grew from {a:.1} to {b:.1} MiB between {step} and {} reconnecting requests (limit {limit} MiB)",
                        self.steps * step
                    ));
                }
            }
            println!(
                "\nno instance grew by {limit} MiB or more between {step} and {} reconnecting requests",
                self.steps * step
            );
        }
        Ok(())
    }
}

impl Target<'_> {
    /// `n` SETs to one key from 50 clients, each connection kept for one
    /// request (`keep_alive` 0) or for all (1).
    fn churn(&self, n: u64, keep_alive: &str) -> Result<(), String> {
        let out = Command::new("redis-benchmark")
            .args(self.args())
            .args(["-t", "set", "-c", "50", "-q", "-k", keep_alive])
            .args(["-n", &n.to_string()])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-benchmark failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }
}

/// Each process's resident memory, in MiB; an error names one that died.
fn resident_mib(processes: &[(String, u32)]) -> Result<Vec<f64>, String> {
    processes
        .iter()
        .map(|(name, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map_err(|_| format!("{name} died"))?;
            let kib: f64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .ok_or(format!("{name} died (no VmRSS)"))?;
            Ok(kib / 1024.0)
        })
        .collect()
}
