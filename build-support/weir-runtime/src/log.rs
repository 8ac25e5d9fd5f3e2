//! Log events through `tracing`, to stderr (stdout stays the flow's own).
//! Nothing is logged on the hot path: links, start-up and shutdown only, so
//! a disabled level costs one atomic load per event site. Each message
//! names the instance it comes from.

use std::str::FromStr;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What is logged unless `--log`/`RUST_LOG` says otherwise: warnings (a peer
/// refused or lost) and errors.
const DEFAULT: &str = "warn";

/// Parses a `RUST_LOG`-style filter: `info`, or `weir_runtime=debug,warn`.
pub(crate) fn parse_filter(text: &str) -> Result<Targets, String> {
    Targets::from_str(text).map_err(|e| {
        format!("not a log filter ({e}): use a level (error, warn, info, debug, trace) or target=level pairs")
    })
}

/// Installs the stderr logger for this process.
pub(crate) fn init(filter: Option<&str>) {
    let targets = parse_filter(filter.unwrap_or(DEFAULT))
        .unwrap_or_else(|_| parse_filter(DEFAULT).expect("the default parses"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    // A subscriber set first (a test harness's) wins.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(targets)
        .try_init();
}
