//! Runs one benchmark deployment: every instance a separate process, its `bench`
//! result lines collected, its peak RSS and CPU time taken from `wait4`, and the
//! wall-clock time from the first spawn to the last exit.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One process to start.
pub struct Instance {
    pub name: String,
    pub command: Command,
}

/// A parsed `bench key=value ...` line.
pub type Report = HashMap<String, String>;

/// What one instance left behind.
#[derive(Debug)]
pub struct Finished {
    pub name: String,
    pub reports: Vec<Report>,
    pub peak_rss_kib: u64,
    /// CPU time in user space and in the kernel, all threads.
    pub user: Duration,
    pub system: Duration,
    /// What it wrote to stderr.
    pub stderr: String,
}

/// A whole run.
#[derive(Debug)]
pub struct Run {
    pub instances: Vec<Finished>,
    pub wall: Duration,
}

impl Run {
    /// The single report of instance `name`.
    pub fn report(&self, name: &str) -> Result<&Report, String> {
        let instance = self
            .instances
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| format!("no instance named {name}"))?;
        match &instance.reports[..] {
            [report] => Ok(report),
            other => Err(format!(
                "{name} printed {} result lines, not one",
                other.len()
            )),
        }
    }
}

/// When a run is over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every instance has exited (successfully).
    AllExit,
    /// Some instance printed a result; the rest are then killed (flows that run
    /// until stopped).
    FirstReport,
}

enum Failure {
    Instance(usize),
    /// The limit passed with these instances still running.
    Timeout(Vec<String>),
}

enum Event {
    Line(usize, String),
    /// An instance's stdout has ended: every line of it has been sent.
    Closed,
    Exit(usize, i32, Usage),
}

/// Starts every instance and waits as `until` says, for at most `limit`. Any
/// instance failing (or the limit passing) kills the rest and is an error naming
/// it, with the end of its stderr.
pub fn run(instances: Vec<Instance>, until: Until, limit: Duration) -> Result<Run, String> {
    let (events, inbox) = mpsc::channel();
    let started = Instant::now();
    let mut names = Vec::new();
    let mut pids = Vec::new();
    let mut stderrs = Vec::new();
    let kill_all = |pids: &[i32]| {
        for &pid in pids {
            // SAFETY: kill(2) on a child of ours; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    };
    for (i, mut instance) in instances.into_iter().enumerate() {
        let child = instance
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                kill_all(&pids);
                return Err(format!("cannot start {}: {e}", instance.name));
            }
        };
        let pid = child.id() as i32;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let lines = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(Event::Line(i, line));
            }
            let _ = lines.send(Event::Closed);
        });
        stderrs.push(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        }));
        let exits = events.clone();
        std::thread::spawn(move || {
            let (status, usage) = wait(pid);
            let _ = exits.send(Event::Exit(i, status, usage));
        });
        names.push(instance.name);
        pids.push(pid);
    }
    drop(events);

    let mut reports: Vec<Vec<Report>> = names.iter().map(|_| Vec::new()).collect();
    let mut usages = vec![None; names.len()];
    let mut open_outputs = names.len();
    let mut failure = None;
    let mut stopping = false;
    while usages.iter().any(Option::is_none) || open_outputs > 0 {
        let left = limit.saturating_sub(started.elapsed());
        match inbox.recv_timeout(left) {
            Ok(Event::Line(i, line)) => {
                if let Some(report) = parse(&line) {
                    reports[i].push(report);
                    if until == Until::FirstReport && !stopping {
                        stopping = true;
                        kill_all(&pids);
                    }
                }
            }
            Ok(Event::Closed) => open_outputs -= 1,
            Ok(Event::Exit(i, status, usage)) => {
                usages[i] = Some(usage);
                if status != 0 && !stopping && failure.is_none() {
                    failure = Some(Failure::Instance(i));
                    stopping = true;
                    kill_all(&pids);
                }
            }
            Err(_) => {
                if !stopping {
                    kill_all(&pids);
                    let running = names
                        .iter()
                        .zip(&usages)
                        .filter(|(_, p)| p.is_none())
                        .map(|(n, _)| n.clone())
                        .collect();
                    failure = Some(Failure::Timeout(running));
                    stopping = true;
                }
            }
        }
    }
    let wall = started.elapsed();
    let stderrs: Vec<String> = stderrs
        .into_iter()
        .map(|t| t.join().unwrap_or_default())
        .collect();
    match failure {
        Some(Failure::Timeout(running)) => {
            return Err(format!(
                "timed out after {limit:?}, still running: {}",
                running.join(", ")
            ))
        }
        Some(Failure::Instance(i)) => {
            let tail: Vec<&str> = stderrs[i].lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{} failed: {}", names[i], tail.join("\n  ")));
        }
        None => {}
    }
    Ok(Run {
        instances: names
            .into_iter()
            .zip(reports)
            .zip(usages)
            .zip(stderrs)
            .map(|(((name, reports), usage), stderr)| {
                let usage = usage.unwrap_or_default();
                Finished {
                    name,
                    reports,
                    peak_rss_kib: usage.peak_rss_kib,
                    user: usage.user,
                    system: usage.system,
                    stderr,
                }
            })
            .collect(),
        wall,
    })
}

/// What the kernel counted for an exited process.
#[derive(Clone, Copy, Default)]
struct Usage {
    peak_rss_kib: u64,
    user: Duration,
    system: Duration,
}

fn duration(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Waits for `pid`: its exit code (or 128 + signal) and what it used.
fn wait(pid: i32) -> (i32, Usage) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; pid is our own child.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        return (-1, Usage::default());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let used = Usage {
        peak_rss_kib: usage.ru_maxrss.max(0) as u64,
        user: duration(usage.ru_utime),
        system: duration(usage.ru_stime),
    };
    (code, used)
}

/// `bench a=1 b=2` as a map; other lines are not results.
fn parse(line: &str) -> Option<Report> {
    let rest = line.strip_prefix("bench ")?;
    Some(
        rest.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}
