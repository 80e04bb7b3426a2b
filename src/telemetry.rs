//! Logging. Human-readable text or one JSON object per line, filtered by
//! `RUST_LOG`. teloxide logs through the `log` crate; `try_init` installs the
//! `tracing-log` bridge so those records arrive here too.
//!
//! Rule for every module: spans and events carry ids (update, chat, partition),
//! never message content, and user ids only at debug level.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber writing to stdout. Calling it twice is harmless.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_target(true).with_ansi(colours(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            )))
            .try_init(),
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// Colours only on a terminal, and never with `NO_COLOR` set (no-color.org):
/// container logs and files get plain text.
fn colours(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(super::colours(true, false));
        assert!(!super::colours(false, false));
        assert!(!super::colours(true, true));
    }
}
