//! What a file "is" for a lock: YAML and JSON are hashed in RFC 8785 canonical JSON, so key
//! order, comments and whitespace do not change the digest; anything else as raw bytes.
//! Structured content also yields key-path differences between two versions.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TrustError;

/// Integers beyond ±2^53 lose precision as ECMAScript numbers, so they are hashed as strings.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// RFC 8785 canonical JSON of the parsed YAML or JSON document.
    Rfc8785,
    /// The bytes as they are.
    Raw,
}

impl Form {
    pub fn for_path(path: &Path) -> Form {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yaml" | "yml" | "json" | "jsonl" | "ndjson") => Form::Rfc8785,
            _ => Form::Raw,
        }
    }
}

/// A file's canonical bytes and, for structured files, the parsed value they came from.
#[derive(Debug, Clone)]
pub struct Canonical {
    pub form: Form,
    pub bytes: Vec<u8>,
    pub value: Option<Value>,
}

/// The canonical form of `raw`, read from `path` (the extension picks the form).
pub fn canonicalize(path: &Path, raw: &[u8]) -> Result<Canonical, TrustError> {
    match Form::for_path(path) {
        Form::Raw => Ok(Canonical {
            form: Form::Raw,
            bytes: raw.to_vec(),
            value: None,
        }),
        Form::Rfc8785 => {
            let value = parse_structured(path, raw).map_err(TrustError::Input)?;
            Ok(Canonical {
                form: Form::Rfc8785,
                bytes: canonical_json(&value)?,
                value: Some(value),
            })
        }
    }
}

/// RFC 8785 bytes of a JSON value, with unsafe integers turned into strings first.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, TrustError> {
    serde_json_canonicalizer::to_vec(&safe_integers(value.clone()))
        .map_err(|e| TrustError::Input(format!("cannot canonicalise: {e}")))
}

/// Whether a path holds JSON Lines (one document per line: a corpus, a golden set).
pub fn is_json_lines(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"))
}

/// JSON Lines as an array of its documents (blank lines skipped), so that a change is
/// named by the document it is in: `[116].text`.
fn parse_json_lines(text: &str) -> Result<Value, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| format!("line {} is not valid JSON: {e}", n + 1))
        })
        .collect::<Result<Vec<Value>, String>>()
        .map(Value::Array)
}

fn parse_structured(path: &Path, raw: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 text: {e}"))?;
    if is_json_lines(path) {
        return parse_json_lines(text);
    }
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        return serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"));
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_nodes: 1_000_000,
            max_total_scalar_bytes: 64 * 1024 * 1024,
        },
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let message = e.to_string();
        format!(
            "not valid YAML: {}",
            message.lines().next().unwrap_or(&message)
        )
    })
}

fn safe_integers(value: Value) -> Value {
    match value {
        Value::Number(n) => {
            let unsafe_int = n.as_u64().is_some_and(|u| u > MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER);
            if unsafe_int {
                Value::String(n.to_string())
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(safe_integers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, safe_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// One difference between two versions of a structured file.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// `slos.latency.threshold`, `steps.chaos.drills[2].duration`, `(root)`.
    pub path: String,
    /// `None`: the key was added.
    pub old: Option<Value>,
    /// `None`: the key was removed.
    pub new: Option<Value>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(absent)".to_string(), short);
        write!(
            f,
            "{}: {} → {}",
            self.path,
            show(&self.old),
            show(&self.new)
        )
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Every key path where `old` and `new` differ, in document order of `old`, then additions.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(&mut String::new(), old, new, &mut changes);
    changes
}

fn walk(path: &mut String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let len = path.len();
                push_key(path, key);
                match b.get(key) {
                    Some(vb) => walk(path, va, vb, out),
                    None => out.push(change(path, Some(va), None)),
                }
                path.truncate(len);
            }
            for (key, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                let len = path.len();
                push_key(path, key);
                out.push(change(path, None, Some(vb)));
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(va), Some(vb)) => walk(path, va, vb, out),
                    (va, vb) => out.push(change(path, va, vb)),
                }
                path.truncate(len);
            }
        }
        (a, b) if a != b => out.push(change(path, Some(a), Some(b))),
        _ => {}
    }
}

fn change(path: &str, old: Option<&Value>, new: Option<&Value>) -> Change {
    Change {
        path: if path.is_empty() {
            "(root)".to_string()
        } else {
            path.to_string()
        },
        old: old.cloned(),
        new: new.cloned(),
    }
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        let _ = write!(path, "[{}]", Value::String(key.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Canonical {
        canonicalize(Path::new("x.yaml"), text.as_bytes()).unwrap()
    }

    #[test]
    fn key_order_comments_and_whitespace_do_not_change_the_canonical_form() {
        let a = yaml("# thresholds\nb: 2\na: {x: 1, y: [1, 2]}\n");
        let b = yaml("a:\n  y:\n    - 1\n    - 2   # two\n  x: 1\nb: 2\n");
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.bytes, br#"{"a":{"x":1,"y":[1,2]},"b":2}"#);
        let json = canonicalize(
            Path::new("x.json"),
            br#"{ "b": 2, "a": {"y": [1,2], "x": 1} }"#,
        )
        .unwrap();
        assert_eq!(json.bytes, a.bytes);
    }

    #[test]
    fn numbers_follow_ecmascript_and_big_integers_stay_exact() {
        let c = yaml("f: 1.50\ne: 1e21\nbig: 12345678901234567890\nneg: -9007199254740993\n");
        assert_eq!(
            String::from_utf8(c.bytes).unwrap(),
            r#"{"big":"12345678901234567890","e":1e+21,"f":1.5,"neg":"-9007199254740993"}"#
        );
    }

    #[test]
    fn other_files_are_raw_bytes() {
        let c = canonicalize(Path::new("prompt.txt"), b"Be kind.\n").unwrap();
        assert_eq!(
            (c.form, c.bytes.as_slice()),
            (Form::Raw, &b"Be kind.\n"[..])
        );
    }

    #[test]
    fn invalid_structured_files_are_refused_with_the_reason() {
        let err = canonicalize(Path::new("t.yaml"), b"a: [1, 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not valid YAML"), "{err}");
        let err = canonicalize(Path::new("t.json"), b"{\"a\":")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not valid JSON"), "{err}");
        let err = canonicalize(Path::new("t.yaml"), &[0xff, 0xfe])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("not UTF-8"), "{err}");
    }

    #[test]
    fn diff_names_each_changed_key_path() {
        let old = yaml(
            "slos:\n  latency: {threshold: 300ms}\nsteps: {drills: [{d: 2s}, {d: 1s}]}\nx.y: 1\n",
        );
        let new = yaml(
            "slos:\n  latency: {threshold: 500ms, extra: true}\nsteps: {drills: [{d: 2s}]}\nx.y: 2\n",
        );
        let changes: Vec<String> = diff(old.value.as_ref().unwrap(), new.value.as_ref().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                r#"slos.latency.threshold: "300ms" → "500ms""#,
                "slos.latency.extra: (absent) → true",
                r#"steps.drills[1]: {"d":"1s"} → (absent)"#,
                r#"["x.y"]: 1 → 2"#,
            ]
        );
    }
}
