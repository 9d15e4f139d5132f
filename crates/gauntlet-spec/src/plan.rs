//! The Plan: what a run does, resolved from a checked spec.

/// Why `text` is not an http(s) URL with a host, if it is not.
pub(crate) fn http_url(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or("not an http(s) URL")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("the URL names no host".into());
    }
    Ok(())
}
