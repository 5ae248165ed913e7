//! Non-time figures for `cargo xtask bench`: resident memory of this process, and the
//! `target/bench-figures/<name>.tsv` files (`label<TAB>value<TAB>unit<TAB>baseline<TAB>bar` per line).

use std::fs;
use std::io;
use std::path::PathBuf;

/// Resident set size of this process in bytes (`VmRSS` of `/proc/self/status`), `None` where that file
/// does not exist (not Linux) or does not parse.
pub fn rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The folder for figure files: `$CARGO_TARGET_DIR/bench-figures`, else `<workspace>/target/bench-figures`.
pub fn figures_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        },
        PathBuf::from,
    );
    target.join("bench-figures")
}

/// One line of a figure file.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// What is measured.
    pub label: String,
    /// The measured value, formatted.
    pub value: String,
    /// Its unit.
    pub unit: String,
    /// The baseline, as text (e.g. "Bitcoin Core ~150 B").
    pub baseline: String,
    /// The bar from DESIGN.md, as text.
    pub bar: String,
}

impl Figure {
    /// The figure as one tab-separated line (tabs and newlines inside fields become spaces).
    pub fn line(&self) -> String {
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        format!(
            "{}\t{}\t{}\t{}\t{}",
            clean(&self.label),
            clean(&self.value),
            clean(&self.unit),
            clean(&self.baseline),
            clean(&self.bar)
        )
    }
}

/// Writes `figures` to `<figures_dir>/<name>.tsv` (replacing it); returns the path.
///
/// # Errors
/// Any I/O error creating the folder or writing the file.
pub fn write(name: &str, figures: &[Figure]) -> io::Result<PathBuf> {
    let dir = figures_dir();
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.tsv"));
    let mut text = String::new();
    for f in figures {
        text.push_str(&f.line());
        text.push('\n');
    }
    fs::write(&path, text)?;
    Ok(path)
}

/// Whether a figure benchmark named `name` runs under this process's arguments, as criterion
/// filters: when no filter is given or one is a substring of `name` (flags are skipped).
pub fn selected(name: &str) -> bool {
    selected_by(name, std::env::args().skip(1))
}

fn selected_by(name: &str, args: impl Iterator<Item = String>) -> bool {
    let filters: Vec<String> = args.filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_benchmarks_follow_criterion_style_filters() {
        let args = |v: &[&str]| {
            v.iter()
                .map(|s| (*s).to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(selected_by("utxo_memory", args(&["--bench"])));
        assert!(selected_by("utxo_memory", args(&["--bench", "utxo"])));
        assert!(!selected_by("utxo_memory", args(&["--bench", "channel"])));
        assert!(selected_by(
            "channel_verify_ab",
            args(&["merkle", "verify"])
        ));
    }

    #[test]
    fn rss_is_positive_on_linux() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss_bytes().is_some_and(|b| b > 0));
        }
    }

    #[test]
    fn figure_line_is_five_tab_separated_fields() {
        let f = Figure {
            label: "memory\tper UTXO".into(),
            value: "48.0".into(),
            unit: "B".into(),
            baseline: "Bitcoin Core ~150 B".into(),
            bar: "≤ 64 B".into(),
        };
        assert_eq!(f.line().split('\t').count(), 5);
    }
}
