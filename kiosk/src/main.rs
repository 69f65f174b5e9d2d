//! `zhucan-kiosk`: thin entry point; everything lives in the library (`zhucan_kiosk::cli`).

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = zhucan_kiosk::cli::Cli::parse();
    zhucan_kiosk::cli::run(cli)?;
    Ok(())
}
