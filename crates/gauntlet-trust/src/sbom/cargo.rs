//! Cargo.lock: every locked package, the workspace's own crates included (they ship too),
//! with its checksum and its dependencies resolved by name, and by version where a name is
//! locked twice.

use super::{Contents, Digest, Ecosystem, HashKind, Package};

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    package: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

pub fn read(text: &str) -> Result<Contents, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let purls: Vec<String> = file
        .package
        .iter()
        .map(|e| super::purl::purl(&package(e)))
        .collect();
    // `dependencies` entries read "name", "name version" or "name version (source)".
    let resolve = |dep: &str| -> Option<String> {
        let mut parts = dep.split_whitespace();
        let name = parts.next()?;
        let version = parts.next();
        let found = file
            .package
            .iter()
            .zip(&purls)
            .filter(|(e, _)| e.name == name && version.is_none_or(|v| e.version == v));
        found.map(|(_, purl)| purl.clone()).next()
    };
    let mut packages = Vec::new();
    for entry in &file.package {
        let mut p = package(entry);
        p.depends_on = entry
            .dependencies
            .iter()
            .filter_map(|d| resolve(d))
            .collect();
        packages.push(p);
    }
    // The workspace's own crates (no source) are what the project itself is.
    let direct = file
        .package
        .iter()
        .zip(&purls)
        .filter(|(e, _)| e.source.is_none())
        .map(|(_, purl)| purl.clone())
        .collect();
    Ok(Contents {
        packages,
        direct: Some(direct),
        ..Contents::default()
    })
}

fn package(entry: &Entry) -> Package {
    Package {
        version: Some(entry.version.clone()),
        hashes: entry
            .checksum
            .iter()
            .map(|c| Digest::new(HashKind::Sha256, c))
            .collect(),
        ..Package::new(Ecosystem::Cargo, &entry.name)
    }
}
