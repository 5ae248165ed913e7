//! `cargo xtask bench [FILTER]`: runs the criterion benchmarks of the workspace, then prints one table.
//!
//! Two sources feed the table:
//! - `benches/report.d/*.tsv`: one row per line, `label<TAB>bench id<TAB>baseline bench id<TAB>bar`,
//!   naming criterion benchmark ids (`group/function/parameter`). Each figure is shown with its baseline
//!   measured in the same run and the ratio between them (baseline time / our time: > 1 means faster).
//! - `target/bench-figures/*.tsv`: figures that are not times (memory per coin, proof size), written by
//!   the benchmarks themselves as `label<TAB>value<TAB>unit<TAB>baseline<TAB>bar`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::{cargo, workspace_root};

fn run_benches(filter: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["bench", "--workspace", "--"]);
    cmd.args(filter);
    crate::run("bench", &mut cmd)
}

/// Runs the benchmarks (unless `--report-only`), then prints the table.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let report_only = args.iter().any(|a| a == "--report-only");
    let filter: Vec<String> = args
        .iter()
        .filter(|a| *a != "--report-only")
        .cloned()
        .collect();
    if !report_only {
        run_benches(&filter)?;
    }
    let root = workspace_root();
    let table = report(&root)?;
    println!("{table}");
    Ok(())
}

/// The mean time per iteration (nanoseconds) and element throughput of one criterion benchmark.
struct Measured {
    mean_ns: f64,
    elements: Option<f64>,
}

/// The target directory cargo writes to (`CARGO_TARGET_DIR`, else `<root>/target`).
fn target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into)
}

fn measured(root: &Path, id: &str) -> Option<Measured> {
    let dir = target_dir(root).join("criterion").join(id).join("new");
    let estimates: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("estimates.json")).ok()?).ok()?;
    let mean_ns = estimates["mean"]["point_estimate"].as_f64()?;
    let bench: Option<serde_json::Value> = fs::read_to_string(dir.join("benchmark.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let elements = bench.and_then(|b| b["throughput"]["Elements"].as_f64());
    Some(Measured { mean_ns, elements })
}

fn describe(m: &Measured) -> String {
    match m.elements {
        Some(n) if n > 0.0 => format!("{:.0}/s", n * 1e9 / m.mean_ns),
        _ => format!("{:.1} µs", m.mean_ns / 1e3),
    }
}

fn report(root: &Path) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "| figure | ours | baseline | ratio | bar |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    let spec_dir = root.join("benches").join("report.d");
    let mut specs: Vec<_> = fs::read_dir(&spec_dir)
        .with_context(|| format!("reading {}", spec_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    specs.sort();
    for spec in specs {
        for line in fs::read_to_string(&spec)?.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            let [label, ours, baseline, bar] = cols[..] else {
                eprintln!("{}: ignoring malformed row {line:?}", spec.display());
                continue;
            };
            let ours = measured(root, ours);
            let base = (!baseline.is_empty())
                .then(|| measured(root, baseline))
                .flatten();
            let ratio = match (&ours, &base) {
                (Some(o), Some(b)) => format!("{:.2}×", b.mean_ns / o.mean_ns),
                _ => "–".into(),
            };
            let show = |m: &Option<Measured>| m.as_ref().map_or("not run".into(), describe);
            writeln!(
                out,
                "| {label} | {} | {} | {ratio} | {bar} |",
                show(&ours),
                show(&base)
            )?;
        }
    }
    let figures = target_dir(root).join("bench-figures");
    if let Ok(entries) = fs::read_dir(&figures) {
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            for line in fs::read_to_string(&file)?.lines() {
                let cols: Vec<&str> = line.split('\t').collect();
                if let [label, value, unit, baseline, bar] = cols[..] {
                    writeln!(out, "| {label} | {value} {unit} | {baseline} | – | {bar} |")?;
                }
            }
        }
    }
    Ok(out)
}
