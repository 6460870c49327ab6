//! `--set key=value`: dotted-path overrides applied to a TOML config before it is parsed.

use crate::error::{Result, TrainError};

/// Applies `key=value` (e.g. `run.steps=500`, `optim.lr=3e-4`) to `doc`. The value is read
/// as TOML (number, bool, string, array) and as a plain string if that fails.
pub fn apply(doc: &mut toml::Table, assignment: &str) -> Result<()> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| TrainError::Config(format!("`--set {assignment}`: expected key=value")))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = doc;
    for part in &parts[..parts.len() - 1] {
        let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        match entry {
            toml::Value::Table(t) => table = t,
            _ => return Err(TrainError::Config(format!("`--set {assignment}`: `{part}` is not a section"))),
        }
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_nested_values_with_types() {
        let mut doc: toml::Table = toml::from_str("[run]\nsteps = 10\n").unwrap();
        apply(&mut doc, "run.steps=500").unwrap();
        apply(&mut doc, "optim.lr=3e-4").unwrap();
        apply(&mut doc, "run.name=hello").unwrap();
        assert_eq!(doc["run"]["steps"].as_integer(), Some(500));
        assert_eq!(doc["optim"]["lr"].as_float(), Some(3e-4));
        assert_eq!(doc["run"]["name"].as_str(), Some("hello"));
        assert!(apply(&mut doc, "no_equals_sign").is_err());
        assert!(apply(&mut doc, "run.steps.deeper=1").is_err());
    }
}
