//! `with-postgres <command> [args…]`: starts a throwaway PostgreSQL cluster (Debian's binaries, a
//! temporary directory, a free local port), runs the command with `ZHUCAN_TEST_POSTGRES` set to
//! it, stops and deletes the cluster, and exits as the command did. The server's tests then run
//! on PostgreSQL, each in a database of its own (`zhucan_testkit::postgres::Database`);
//! `scripts/demo --postgres` serves the demo city from it.
//!
//! Ctrl-C reaches the command (it is in the same process group) and does not stop this process
//! before the command has ended: the cluster is always stopped and deleted.

use std::process::{Command, ExitCode};

fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let Some(program) = args.next() else {
        anyhow::bail!("usage: with-postgres <command> [args…]");
    };
    let cluster = zhucan_testkit::postgres::Cluster::start()?;
    eprintln!("with-postgres: a throwaway cluster at {}", cluster.url());
    let mut child = Command::new(&program)
        .args(args)
        .env(zhucan_testkit::postgres::ENV, cluster.url())
        .spawn()?;
    // SIGINT and SIGTERM are the command's to act on; this process only waits for it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.spawn(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
    });
    let status =
        rt.block_on(async { tokio::task::spawn_blocking(move || child.wait()).await })??;
    drop(cluster);
    Ok(ExitCode::from(
        status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)),
    ))
}
