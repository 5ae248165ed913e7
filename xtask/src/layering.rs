//! The layering check: each crate of the design may depend only on crates listed before it
//! (../shared/DESIGN.md), read from `cargo metadata`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The design's crates, bottom layer first.
pub(crate) const LAYERS: [&str; 5] = [
    "utxo-core",
    "wal-store",
    "merkle-proofs",
    "channel-fsm",
    "node-bin",
];

/// Fails when a crate depends (normally or at build time) on a crate at or above its own layer.
pub(crate) fn check(root: &Path) -> Result<()> {
    eprintln!("\n== xtask: layering ==");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let violations = violations(&meta);
    if !violations.is_empty() {
        bail!("layering violated:\n{}", violations.join("\n"));
    }
    let present = meta["packages"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["name"].as_str())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let missing: Vec<_> = LAYERS.iter().filter(|c| !present.contains(c)).collect();
    if !missing.is_empty() {
        bail!("workspace lacks crates of the design: {missing:?}");
    }
    eprintln!("layering: ok");
    Ok(())
}

/// Every `crate -> dependency` edge that points at the same or a higher layer.
fn violations(meta: &serde_json::Value) -> Vec<String> {
    let rank = |name: &str| LAYERS.iter().position(|c| *c == name);
    let mut found = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        let Some(name) = package["name"].as_str() else {
            continue;
        };
        let Some(own) = rank(name) else { continue };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let Some(dep_name) = dep["name"].as_str() else {
                continue;
            };
            let is_dev = dep["kind"].as_str() == Some("dev");
            if let Some(theirs) = rank(dep_name)
                && !is_dev
                && theirs >= own
            {
                found.push(format!(
                    "{name} depends on {dep_name}, which is not below it"
                ));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::violations;

    #[test]
    fn upward_dependency_is_a_violation() {
        let meta = serde_json::json!({"packages": [
            {"name": "utxo-core", "dependencies": [{"name": "wal-store", "kind": null}]},
            {"name": "wal-store", "dependencies": [{"name": "utxo-core", "kind": null}]},
            {"name": "merkle-proofs", "dependencies": [{"name": "node-bin", "kind": "dev"}]},
        ]});
        assert_eq!(
            violations(&meta),
            vec!["utxo-core depends on wal-store, which is not below it".to_string()]
        );
    }
}
