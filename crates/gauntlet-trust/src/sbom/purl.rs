//! Package URLs as the purl specification writes them, and as the reference tools
//! (packageurl-python under cyclonedx-py, cyclonedx-npm) print them: each namespace segment,
//! the name and the version percent-encoded on their own (`pkg:npm/%40babel/code-frame@7.29.7`),
//! PyPI names lower-cased with `_` as `-`, qualifiers sorted by key.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{Ecosystem, Package, Source};

/// Everything but the unreserved characters of RFC 3986 is escaped in a segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// A version keeps `:` (epochs); a qualifier value keeps `:` and `/` (URLs stay readable).
const VERSION: &AsciiSet = &SEGMENT.remove(b':');
const QUALIFIER: &AsciiSet = &VERSION.remove(b'/');

/// The name a registry normalises to: PyPI compares names lower-cased with `_` as `-`.
pub fn normal_name(ecosystem: Ecosystem, name: &str) -> String {
    match ecosystem {
        Ecosystem::Pypi => name.to_ascii_lowercase().replace('_', "-"),
        _ => name.to_string(),
    }
}

/// The purl of a package.
pub fn purl(p: &Package) -> String {
    let (namespace, name) = match p.ecosystem {
        Ecosystem::Npm => (p.group.clone(), p.name.clone()),
        // A Go module path: everything up to the last `/` is the namespace.
        Ecosystem::Golang => match p.name.rsplit_once('/') {
            Some((namespace, name)) => (Some(namespace.to_string()), name.to_string()),
            None => (None, p.name.clone()),
        },
        Ecosystem::Cargo | Ecosystem::Pypi => (None, normal_name(p.ecosystem, &p.name)),
    };
    let mut out = format!("pkg:{}/", p.ecosystem.purl_type());
    if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
        for segment in namespace.split('/').filter(|s| !s.is_empty()) {
            out.push_str(&utf8_percent_encode(segment, SEGMENT).to_string());
            out.push('/');
        }
    }
    out.push_str(&utf8_percent_encode(&name, SEGMENT).to_string());
    if let Some(version) = &p.version {
        out.push('@');
        out.push_str(&utf8_percent_encode(version, VERSION).to_string());
    }
    let qualifier = match &p.source {
        Some(Source::Vcs(url)) => Some(("vcs_url", url)),
        Some(Source::Download(url)) => Some(("download_url", url)),
        None => None,
    };
    if let Some((key, value)) = qualifier {
        out.push_str(&format!("?{key}={}", utf8_percent_encode(value, QUALIFIER)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        ecosystem: Ecosystem,
        group: Option<&str>,
        name: &str,
        version: Option<&str>,
    ) -> Package {
        Package {
            group: group.map(str::to_string),
            version: version.map(str::to_string),
            ..Package::new(ecosystem, name)
        }
    }

    #[test]
    fn purls_are_written_as_the_reference_tools_write_them() {
        let cases = [
            (
                package(Ecosystem::Npm, Some("@babel"), "code-frame", Some("7.29.7")),
                "pkg:npm/%40babel/code-frame@7.29.7",
            ),
            (
                package(Ecosystem::Pypi, None, "typing_extensions", Some("4.12.2")),
                "pkg:pypi/typing-extensions@4.12.2",
            ),
            (
                package(Ecosystem::Pypi, None, "zope.interface", Some("6.0")),
                "pkg:pypi/zope.interface@6.0",
            ),
            (
                package(Ecosystem::Pypi, None, "Flask", None),
                "pkg:pypi/flask",
            ),
            (
                package(Ecosystem::Golang, None, "golang.org/x/net", Some("v0.1.0")),
                "pkg:golang/golang.org/x/net@v0.1.0",
            ),
            (
                package(
                    Ecosystem::Golang,
                    None,
                    "github.com/a/b",
                    Some("v2.0.0+incompatible"),
                ),
                "pkg:golang/github.com/a/b@v2.0.0%2Bincompatible",
            ),
            (
                package(Ecosystem::Cargo, None, "serde", Some("1.0.200")),
                "pkg:cargo/serde@1.0.200",
            ),
        ];
        for (p, want) in cases {
            assert_eq!(purl(&p), want);
        }
        let mut black = package(Ecosystem::Pypi, None, "black", None);
        black.source = Some(Source::Vcs(
            "git+https://github.com/psf/black.git@24.1.0#egg=black".into(),
        ));
        assert_eq!(
            purl(&black),
            "pkg:pypi/black?vcs_url=git%2Bhttps://github.com/psf/black.git%4024.1.0%23egg%3Dblack"
        );
    }
}
