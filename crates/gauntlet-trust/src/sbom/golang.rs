//! go.sum: every module version whose content is hashed there (lines that hash only a
//! `go.mod` name versions the build never downloaded). With the `go.mod` beside it, the
//! project's module path and its direct requirements.

use std::path::Path;

use super::{Contents, Ecosystem, Package};

pub fn read(text: &str, path: &Path) -> Contents {
    let mut packages: Vec<Package> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(module), Some(version), Some(_hash)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if version.ends_with("/go.mod") {
            continue;
        }
        let known = packages
            .iter()
            .any(|p| p.name == module && p.version.as_deref() == Some(version));
        if !known {
            packages.push(Package {
                version: Some(version.to_string()),
                ..Package::new(Ecosystem::Golang, module)
            });
        }
    }
    let (project, direct) = go_mod(path, &packages);
    Contents {
        packages,
        direct,
        project,
        warnings: Vec::new(),
    }
}

/// The module path and the direct requirements (not `// indirect`) of the go.mod beside.
#[allow(clippy::type_complexity)]
fn go_mod(
    sum: &Path,
    packages: &[Package],
) -> (Option<(String, Option<String>)>, Option<Vec<String>>) {
    let Ok(text) = std::fs::read_to_string(sum.with_file_name("go.mod")) else {
        return (None, None);
    };
    let mut module = None;
    let mut direct = Vec::new();
    let mut in_block = false;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("module ") {
            module = Some(m.trim().trim_matches('"').to_string());
            continue;
        }
        let requirement = if line == "require (" {
            in_block = true;
            continue;
        } else if in_block && line == ")" {
            in_block = false;
            continue;
        } else if in_block {
            line
        } else if let Some(r) = line.strip_prefix("require ") {
            r
        } else {
            continue;
        };
        if requirement.contains("// indirect") {
            continue;
        }
        let mut parts = requirement.split_whitespace();
        if let (Some(m), Some(v)) = (parts.next(), parts.next()) {
            direct.extend(
                packages
                    .iter()
                    .filter(|p| p.name == m && p.version.as_deref() == Some(v))
                    .map(super::purl::purl),
            );
        }
    }
    (module.map(|m| (m, None)), Some(direct))
}
