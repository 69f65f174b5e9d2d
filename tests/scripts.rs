//! The test runner script (`scripts/cargo-test-all`, called by the README's `scripts/test`)
//! against real `cargo test` output: a tiny fixture crate (`tests/fixtures/test-summary`) whose
//! test binaries pass, fail or crash on request. The summary must count every test of every
//! binary, keep going after a failing or crashing binary, and fail the run when anything failed.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    status: i32,
    summary: String,
    output: String,
}

fn run(dir: &Path, env: &[(&str, &str)]) -> Run {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/cargo-test-all"));
    cmd.arg("--manifest-path")
        .arg(root.join("tests/fixtures/test-summary/Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir)
        .env_remove("SUMMARY_FIXTURE_FAIL")
        .env_remove("SUMMARY_FIXTURE_CRASH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run scripts/cargo-test-all");
    let output = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = output.lines().last().unwrap_or_default().to_owned();
    Run {
        status: out.status.code().unwrap_or(-1),
        summary,
        output,
    }
}

/// The sum of the `test result:` lines, as a reader would add them up.
fn sum_of_result_lines(output: &str) -> (u32, u32) {
    let mut sum = (0, 0);
    for l in output.lines().filter(|l| l.starts_with("test result:")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        for (i, word) in w.iter().enumerate().skip(1) {
            let n: u32 = w[i - 1].parse().unwrap_or(0);
            match word.trim_end_matches(';') {
                "passed" => sum.0 += n,
                "failed" => sum.1 += n,
                _ => {}
            }
        }
    }
    sum
}

#[test]
fn the_summary_counts_every_binary_and_a_failure_or_crash_fails_the_run() {
    let target = tempfile::tempdir().expect("tempdir");

    // all pass: 3 unit + 2 + 1 + 2 integration + 1 doc-test, in five binaries
    let ok = run(target.path(), &[]);
    assert_eq!(ok.summary, "zhucan: 9 passed, 0 failed", "{}", ok.output);
    assert_eq!(sum_of_result_lines(&ok.output), (9, 0));
    assert_eq!(ok.status, 0);

    // one test fails: every later binary still runs, the summary is the sum, the run fails
    let failed = run(target.path(), &[("SUMMARY_FIXTURE_FAIL", "1")]);
    assert_eq!(
        failed.summary, "zhucan: 8 passed, 1 failed",
        "{}",
        failed.output
    );
    assert_eq!(sum_of_result_lines(&failed.output), (8, 1));
    assert!(failed.output.contains("c_after"), "stopped at the failure");
    assert_ne!(failed.status, 0);

    // a binary dies without a result line: named, counted as a failure, the run fails
    let crashed = run(target.path(), &[("SUMMARY_FIXTURE_CRASH", "1")]);
    assert_eq!(
        crashed.summary, "zhucan: 8 passed, 1 failed",
        "{}",
        crashed.output
    );
    assert!(
        crashed
            .output
            .lines()
            .any(|l| l.contains("no result from") && l.contains("b_crashes")),
        "{}",
        crashed.output
    );
    assert_eq!(sum_of_result_lines(&crashed.output), (8, 0));
    assert_ne!(crashed.status, 0);

    // both at once
    let both = run(
        target.path(),
        &[
            ("SUMMARY_FIXTURE_FAIL", "1"),
            ("SUMMARY_FIXTURE_CRASH", "1"),
        ],
    );
    assert_eq!(
        both.summary, "zhucan: 7 passed, 2 failed",
        "{}",
        both.output
    );
    assert_ne!(both.status, 0);
}

#[test]
fn a_build_failure_fails_the_run_and_counts_nothing() {
    let target = tempfile::tempdir().expect("tempdir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/cargo-test-all"))
        .arg("--manifest-path")
        .arg(target.path().join("no-such-crate/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target.path())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("zhucan: 0 passed, 0 failed"));
    assert_ne!(out.status.code(), Some(0));
}
