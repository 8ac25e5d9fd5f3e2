//! The benchmark suite: Weir side by side with a hand-written tokio program and
//! with Timely dataflow, on the same workloads, in one run.
//!
//! ```sh
//! cargo run --release -p examples --example bench            # full sizes, 5 repetitions
//! cargo run --release -p examples --example bench -- --quick # small sizes, checks only
//! cargo run --release -p examples --example bench -- --instructions # instructions per record (cachegrind)
//! ```
//!
//! Every instance is a separate process on loopback. For each workload the
//! systems take turns, repetition by repetition; every run's answer is checked;
//! the table gives medians, Weir's ratio to each counterpart (the median of the
//! ratios of runs made back to back, with their range), and peak RSS. Pipe,
//! pipe_struct and broadcast also run at a tenth of their size.

mod instructions;
mod launch;
mod table;
mod workloads;

use std::process::ExitCode;
use workloads::{Sizes, Systems};

struct Options {
    quick: bool,
    /// Count instructions per record under cachegrind instead of timing.
    instructions: bool,
    reps: usize,
    only: Option<String>,
    timely: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        instructions: false,
        reps: 0,
        only: None,
        timely: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--instructions" => options.instructions = true,
            "--no-timely" => options.timely = false,
            "--reps" => {
                options.reps = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--reps needs a number")?
            }
            "--only" => options.only = Some(args.next().ok_or("--only needs a workload")?),
            "--help" | "-h" => {
                return Err(
                    "usage: bench [--quick] [--instructions] [--reps N] [--only WORKLOAD] [--no-timely]\n\
                     workloads: pipe, pipe_struct, broadcast, ping_pong, word_count, build"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if options.reps == 0 {
        options.reps = if options.quick { 2 } else { 5 };
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let systems = match Systems::build(options.timely && !options.instructions) {
        Ok(systems) => systems,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if options.instructions {
        return match instructions::count(&systems, options.quick, options.only.as_deref()) {
            Ok(table) => {
                println!(
                    "user-space instructions per record (valgrind --tool=cachegrind), per instance \
                     of each role, from runs at two sizes; ratio = Weir / system, like for like\n"
                );
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let sizes = if options.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let mut table = table::Table::default();
    for workload in workloads::ALL {
        if options
            .only
            .as_deref()
            .is_some_and(|only| only != workload.name())
        {
            continue;
        }
        if options.quick && workload.full_only() {
            continue;
        }
        for (i, n) in workload.sizes(&sizes).into_iter().enumerate() {
            eprintln!("running {} ({n}) ...", workload.name());
            match workload.measure(&systems, n, i == 0, options.reps) {
                Ok(rows) => table.extend(rows),
                Err(e) => {
                    eprintln!("error: {}: {e}", workload.name());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!(
        "{} mode, {} repetitions, medians; ratio = Weir / system, like for like: sealed tokio \
         against Weir as deployed (links sealed), tokio and timely in clear against Weir in \
         clear, and Weir in clear's own ratio is sealed / in clear (the cost of protection); \
         the median of the ratios of runs made back to back (above 1 is Weir faster, except \
         for latency and build time, where below 1 is Weir faster), with the lowest and \
         highest pair\n",
        if options.quick { "quick" } else { "full" },
        options.reps
    );
    print!("{table}");
    // The phase beside the ratios: from this run's pipe, or a probe of it.
    let pipe_in_clear = match table.pipe_in_clear() {
        Some(rate) => Ok(rate),
        None => workloads::Workload::probe_phase(&systems),
    };
    match pipe_in_clear {
        Ok(rate) => println!("\n{}", table::phase(rate)),
        Err(e) => eprintln!("warning: the phase probe failed: {e}"),
    }
    ExitCode::SUCCESS
}
