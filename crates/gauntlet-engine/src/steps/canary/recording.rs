//! What a stage's panel saw, kept so `gauntlet judge` can replay it: observations as
//! gzipped JSON lines (compressed as recorded), and the readers of observation files.

use std::io::Write;

use gauntlet_stats::{Arm, Observation};

/// Observations as gzipped JSON lines, compressed as they arrive.
pub struct Recording {
    encoder: flate2::write::GzEncoder<Vec<u8>>,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            encoder: flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
        }
    }
}

impl Recording {
    pub fn push(&mut self, observation: &Observation) {
        if let Ok(line) = serde_json::to_string(observation) {
            let _ = writeln!(self.encoder, "{line}");
        }
    }
    pub fn finish(self) -> Vec<u8> {
        self.encoder.finish().unwrap_or_default()
    }
}

/// Reads recorded observations: JSON lines (optionally gzipped) or CSV with a header naming
/// `arm`, `ok`, `latency_ms` and optionally `t_ms`. Errors name the line.
pub fn read_observations(bytes: &[u8]) -> Result<Vec<Observation>, String> {
    use std::io::Read;
    let mut text = String::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot decompress: {e}"))?;
    } else {
        text = String::from_utf8(bytes.to_vec())
            .map_err(|_| "the file is neither UTF-8 text nor gzip".to_string())?;
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let Some((_, first)) = lines.peek() else {
        return Ok(Vec::new());
    };
    if first.trim_start().starts_with('{') {
        return lines
            .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect();
    }
    let header: Vec<String> = first
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(arm_at), Some(ok_at), Some(latency_at)) =
        (column("arm"), column("ok"), column("latency_ms"))
    else {
        return Err(
            "line 1: a CSV header must name `arm`, `ok` and `latency_ms` (and may name `t_ms`)"
                .into(),
        );
    };
    let t_at = column("t_ms")
        .or_else(|| column("timestamp_ms"))
        .or_else(|| column("timestamp"));
    lines
        .skip(1)
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let field = |at: usize| {
                fields
                    .get(at)
                    .copied()
                    .ok_or_else(|| format!("line {}: missing column {}", i + 1, at + 1))
            };
            let arm = match field(arm_at)? {
                "baseline" => Arm::Baseline,
                "candidate" => Arm::Candidate,
                other => {
                    return Err(format!(
                        "line {}: arm `{other}` is neither `baseline` nor `candidate`",
                        i + 1
                    ));
                }
            };
            let ok = match field(ok_at)? {
                "true" | "1" => true,
                "false" | "0" => false,
                other => return Err(format!("line {}: ok `{other}` is not true/false", i + 1)),
            };
            let latency_ms = field(latency_at)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("line {}: latency_ms is not a non-negative number", i + 1)
                })?;
            let t_ms = match t_at {
                Some(at) => field(at)?
                    .parse::<u64>()
                    .map_err(|_| format!("line {}: t_ms is not a whole number", i + 1))?,
                None => i as u64,
            };
            Ok(Observation {
                arm,
                ok,
                latency_ms,
                t_ms,
            })
        })
        .collect()
}

/// A stage's observations as gzipped JSON lines (what `gauntlet judge` reads).
pub fn observations_gz(observations: &[Observation]) -> Vec<u8> {
    let mut recording = Recording::default();
    for observation in observations {
        recording.push(observation);
    }
    recording.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn observation_files_parse_in_every_format() {
        let csv = "arm,ok,latency_ms,timestamp\nbaseline,true,1.5,10\ncandidate,0,2,11\n";
        let parsed = read_observations(csv.as_bytes()).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[1].arm, parsed[1].ok, parsed[1].t_ms),
            (Arm::Candidate, false, 11)
        );
        let gz = observations_gz(&parsed);
        assert_eq!(read_observations(&gz).unwrap(), parsed);
        let err = read_observations(b"arm,ok,latency_ms\nmiddle,true,1\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(read_observations(b"x,y\n").unwrap_err().contains("arm"));
    }

    proptest! {
        #[test]
        fn observation_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_observations(&bytes);
        }

        #[test]
        fn near_valid_lines_never_panic(
            arm in "(baseline|candidate|[a-z]{0,4})",
            ok in "(true|false|0|1|x)?",
            latency in "[-0-9.eE]{0,6}",
            t in "[0-9a-z]{0,4}",
        ) {
            let csv = format!("arm,ok,latency_ms,t_ms\n{arm},{ok},{latency},{t}\n");
            let _ = read_observations(csv.as_bytes());
            let json = format!("{{\"arm\":\"{arm}\",\"ok\":{ok},\"latency_ms\":{latency}}}\n");
            let _ = read_observations(json.as_bytes());
        }
    }
}
