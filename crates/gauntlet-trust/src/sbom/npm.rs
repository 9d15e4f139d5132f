//! package-lock.json and npm-shrinkwrap.json (lockfile versions 1 to 3): every installed
//! package by its `node_modules` path, scoped names split into group and name as
//! cyclonedx-npm does, dependencies resolved the way Node resolves them (the nearest
//! `node_modules` up the tree), dev-only packages marked excluded and optional ones optional.

use serde_json::{Map, Value};

use super::{Contents, Ecosystem, Package, Scope};

const NM: &str = "node_modules/";
/// Nested `dependencies` of a version 1 lock deeper than this are not followed.
const MAX_DEPTH: usize = 256;

pub fn read(text: &str) -> Result<Contents, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let entries = match (doc.get("packages"), doc.get("dependencies")) {
        (Some(Value::Object(packages)), _) => packages.clone(),
        (_, Some(Value::Object(deps))) => {
            // Version 1: nested trees; give each the path version 2 would.
            let mut flat = Map::new();
            flatten_v1(deps, "", &mut flat, 0);
            flat
        }
        _ => return Err("neither `packages` nor `dependencies`: not an npm lock file".into()),
    };
    let mut packages = Vec::new();
    for (path, entry) in &entries {
        let Some(idx) = path.rfind(NM) else {
            continue; // "" is the project itself; workspace folders are not installs
        };
        if entry.get("link").and_then(Value::as_bool) == Some(true) {
            continue; // a symlink to a workspace folder listed on its own
        }
        let full = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&path[idx + NM.len()..]);
        let (group, name) = match full.split_once('/') {
            Some((scope, name)) if scope.starts_with('@') => (Some(scope.to_string()), name),
            _ => (None, full),
        };
        let flag = |key: &str| entry.get(key).and_then(Value::as_bool) == Some(true);
        let mut p = Package {
            group,
            version: entry
                .get("version")
                .and_then(Value::as_str)
                .map(String::from),
            hashes: super::integrity(entry.get("integrity").and_then(Value::as_str)),
            scope: if flag("dev") {
                Scope::Excluded
            } else if flag("optional") || flag("devOptional") {
                Scope::Optional
            } else {
                Scope::Required
            },
            ..Package::new(Ecosystem::Npm, name)
        };
        p.depends_on = wanted(entry)
            .filter_map(|dep| resolve(&entries, path, dep))
            .filter_map(|key| entries.get(&key).map(|e| (key, e)))
            .map(|(key, e)| purl_at(&key, e))
            .collect();
        packages.push(p);
    }
    let root = entries.get("").unwrap_or(&Value::Null);
    let direct = wanted(root)
        .filter_map(|dep| resolve(&entries, "", dep))
        .filter_map(|key| entries.get(&key).map(|e| purl_at(&key, e)))
        .collect();
    let project = doc
        .get("name")
        .or_else(|| root.get("name"))
        .and_then(Value::as_str)
        .map(|name| {
            let version = doc.get("version").or_else(|| root.get("version"));
            (
                name.to_string(),
                version.and_then(Value::as_str).map(String::from),
            )
        });
    Ok(Contents {
        packages,
        direct: Some(direct),
        project,
        warnings: Vec::new(),
    })
}

/// The names a package (or the project) asks for: every kind of dependency it declares.
fn wanted(entry: &Value) -> impl Iterator<Item = &str> {
    [
        "dependencies",
        "optionalDependencies",
        "peerDependencies",
        "devDependencies",
        "requires",
    ]
    .into_iter()
    .filter_map(|key| entry.get(key).and_then(Value::as_object))
    .flat_map(|deps| deps.keys().map(String::as_str))
}

/// Where Node finds `dep` for the package at `from`: its own `node_modules`, then each
/// ancestor's, up to the top.
fn resolve(entries: &Map<String, Value>, from: &str, dep: &str) -> Option<String> {
    let mut base = from.to_string();
    loop {
        let candidate = if base.is_empty() {
            format!("{NM}{dep}")
        } else {
            format!("{base}/{NM}{dep}")
        };
        if entries.contains_key(&candidate) {
            return Some(candidate);
        }
        if base.is_empty() {
            return None;
        }
        base = match base.rfind(&format!("/{NM}")) {
            Some(i) => base[..i].to_string(),
            None => String::new(),
        };
    }
}

fn purl_at(path: &str, entry: &Value) -> String {
    let full = entry
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_else(|| path.rfind(NM).map_or(path, |i| &path[i + NM.len()..]));
    let (group, name) = match full.split_once('/') {
        Some((scope, name)) if scope.starts_with('@') => (Some(scope.to_string()), name),
        _ => (None, full),
    };
    super::purl::purl(&Package {
        group,
        version: entry
            .get("version")
            .and_then(Value::as_str)
            .map(String::from),
        ..Package::new(Ecosystem::Npm, name)
    })
}

fn flatten_v1(deps: &Map<String, Value>, base: &str, out: &mut Map<String, Value>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for (name, entry) in deps {
        let path = if base.is_empty() {
            format!("{NM}{name}")
        } else {
            format!("{base}/{NM}{name}")
        };
        if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
            flatten_v1(nested, &path, out, depth + 1);
        }
        // In version 1, `dependencies` holds nested installs; `requires` what it asks for.
        let mut entry = entry.clone();
        if let Some(map) = entry.as_object_mut() {
            map.remove("dependencies");
        }
        out.insert(path, entry);
    }
}
