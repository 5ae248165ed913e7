//! Project automation, run as `cargo xtask <task>`:
//!
//! - `ci`: format check, clippy (warnings denied, all targets), every test including doc tests (fails
//!   when no test ran), `cargo doc` with warnings denied, the layering check, and the loom models.
//! - `loom`: the loom models of the concurrent code (`--cfg loom`); fails when no loom test ran.
//! - `bench`: the criterion benchmarks, then one table of figures, baselines, ratios and bars.

mod bench;
mod layering;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = args.get(1..).unwrap_or(&[]);
    match task {
        "ci" => ci(),
        "loom" => loom(),
        "bench" => bench::run(rest),
        "layering" => layering::check(&workspace_root()),
        _ => {
            eprintln!("usage: cargo xtask <ci|loom|bench [FILTER]|layering>");
            Ok(())
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub(crate) fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command, failing with its name when it exits non-zero.
pub(crate) fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("\n== xtask: {step} ==");
    let status = cmd.status().with_context(|| format!("starting {step}"))?;
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

/// Runs a command, echoing and capturing its combined test output, and returns the number of tests
/// that passed according to the test runners' `test result:` lines.
fn run_counting_tests(step: &str, cmd: &mut Command) -> Result<u64> {
    eprintln!("\n== xtask: {step} ==");
    let output = cmd.output().with_context(|| format!("starting {step}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    if !output.status.success() {
        bail!("{step} failed ({})", output.status);
    }
    Ok(count_passed(&stdout))
}

/// Sums `N passed` over every `test result:` line of libtest output.
fn count_passed(output: &str) -> u64 {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("test result: "))
        .filter_map(|rest| {
            let passed = rest
                .split(';')
                .find(|part| part.trim().ends_with("passed"))?;
            passed.split_whitespace().rev().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

fn ci() -> Result<()> {
    run("fmt", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    layering::check(&workspace_root())?;
    // Unit, integration and doc tests of every crate (benches are built by clippy above, run by
    // `cargo xtask bench`).
    let passed = run_counting_tests("test", cargo().args(["test", "--workspace"]))?;
    run(
        "doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    if passed == 0 {
        bail!("no test ran");
    }
    loom()?;
    println!("{passed} passed, 0 failed");
    eprintln!("xtask ci: ok ({passed} tests)");
    Ok(())
}

fn loom() -> Result<()> {
    let target = workspace_root().join("target").join("loom");
    let passed = run_counting_tests(
        "loom",
        cargo()
            .args([
                "test",
                "--release",
                "-p",
                "utxo-core",
                "-p",
                "channel-fsm",
                "--lib",
                "loom",
            ])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", target)
            .env("LOOM_MAX_PREEMPTIONS", "2"),
    )?;
    if passed == 0 {
        bail!("no loom test ran");
    }
    eprintln!("xtask loom: ok ({passed} models)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::count_passed;

    #[test]
    fn counts_passed_tests_over_all_result_lines() {
        let out = "test result: ok. 3 passed; 0 failed; 0 ignored\nnoise\n\
                   test result: ok. 0 passed; 0 failed\ntest result: ok. 12 passed; 0 failed\n";
        assert_eq!(count_passed(out), 15);
        assert_eq!(count_passed("nothing here"), 0);
    }
}
