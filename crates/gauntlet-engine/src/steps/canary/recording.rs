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
/// Observations read from a file, and whether they carry their times (`t_ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub list: Vec<Observation>,
    /// Whether every observation has its time: then a replay honours the stage's bake, and
    /// the times must not go back.
    pub timed: bool,
}

/// Reads an observation file: JSON lines (what a run records, gzipped or not) or CSV with
/// the columns `arm`, `ok`, `latency_ms` and optionally `t_ms`. Times that go back are
/// refused with their line: a replay in another order would decide something else.
pub fn read_observations(bytes: &[u8]) -> Result<Observations, ObservationError> {
    let (list, times) = parse_observations(bytes)?;
    let timed = !list.is_empty() && times.iter().all(|t| t.is_some());
    if timed {
        for pair in times.windows(2) {
            if let [Some((_, before)), Some((line, now))] = pair
                && now < before
            {
                return Err(ObservationError::at(
                    *line,
                    format!(
                        "t_ms {now} is earlier than the line before ({before}): observations must be in the order they happened"
                    ),
                ));
            }
        }
    }
    Ok(Observations { list, timed })
}

/// Why an observation file cannot be read: the file as a whole, or one of its lines.
#[derive(Debug, thiserror::Error)]
pub enum ObservationError {
    #[error("{0}")]
    File(String),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

impl ObservationError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ObservationError::Line {
            line,
            message: message.into(),
        }
    }
}

/// The observations, and per observation its line and time when the file gives one.
type Parsed = (Vec<Observation>, Vec<Option<(usize, u64)>>);

fn parse_observations(bytes: &[u8]) -> Result<Parsed, ObservationError> {
    let text = decode(bytes)?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    match lines.first() {
        None => Ok((Vec::new(), Vec::new())),
        Some((_, first)) if first.trim_start().starts_with('{') => json_lines(&lines),
        Some((_, header)) => csv(header, &lines[1..]),
    }
}

/// The file as text: gzip is decompressed first.
fn decode(bytes: &[u8]) -> Result<String, ObservationError> {
    use std::io::Read;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return String::from_utf8(bytes.to_vec())
            .map_err(|_| ObservationError::File("the file is neither UTF-8 text nor gzip".into()));
    }
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| ObservationError::File(format!("cannot decompress: {e}")))?;
    Ok(text)
}

/// One JSON observation per (numbered) line; a line is timed when it names its time.
fn json_lines(lines: &[(usize, &str)]) -> Result<Parsed, ObservationError> {
    let mut list = Vec::new();
    let mut times = Vec::new();
    for &(n, line) in lines {
        let observation: Observation =
            serde_json::from_str(line).map_err(|e| ObservationError::at(n, e.to_string()))?;
        let timed = ["\"t_ms\"", "\"timestamp\"", "\"timestamp_ms\""]
            .iter()
            .any(|key| line.contains(key));
        times.push(timed.then_some((n, observation.t_ms)));
        list.push(observation);
    }
    Ok((list, times))
}

/// Where a CSV file keeps each field.
struct Columns {
    arm: usize,
    ok: usize,
    latency: usize,
    t: Option<usize>,
}

/// A header naming `arm`, `ok`, `latency_ms` (and perhaps `t_ms`), then one row per line.
fn csv(header: &str, rows: &[(usize, &str)]) -> Result<Parsed, ObservationError> {
    let header: Vec<String> = header
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(arm), Some(ok), Some(latency)) = (column("arm"), column("ok"), column("latency_ms"))
    else {
        return Err(ObservationError::at(
            1,
            "a CSV header must name `arm`, `ok` and `latency_ms` (and may name `t_ms`)",
        ));
    };
    let t = column("t_ms")
        .or_else(|| column("timestamp_ms"))
        .or_else(|| column("timestamp"));
    let columns = Columns {
        arm,
        ok,
        latency,
        t,
    };
    let list: Vec<Observation> = rows
        .iter()
        .map(|&(n, line)| csv_row(&columns, n, line))
        .collect::<Result<_, ObservationError>>()?;
    let times = rows
        .iter()
        .zip(&list)
        .map(|(&(n, _), o)| t.map(|_| (n, o.t_ms)))
        .collect();
    Ok((list, times))
}

/// Row `n`; without a time column its time is its line's index.
fn csv_row(columns: &Columns, n: usize, line: &str) -> Result<Observation, ObservationError> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let field = |at: usize| {
        fields
            .get(at)
            .copied()
            .ok_or_else(|| ObservationError::at(n, format!("missing column {}", at + 1)))
    };
    let arm = match field(columns.arm)? {
        "baseline" => Arm::Baseline,
        "candidate" => Arm::Candidate,
        other => {
            return Err(ObservationError::at(
                n,
                format!("arm `{other}` is neither `baseline` nor `candidate`"),
            ));
        }
    };
    let ok = match field(columns.ok)? {
        "true" | "1" => true,
        "false" | "0" => false,
        other => {
            return Err(ObservationError::at(
                n,
                format!("ok `{other}` is not true/false"),
            ));
        }
    };
    let latency_ms = field(columns.latency)?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| ObservationError::at(n, "latency_ms is not a non-negative number"))?;
    let t_ms = match columns.t {
        Some(at) => field(at)?
            .parse::<u64>()
            .map_err(|_| ObservationError::at(n, "t_ms is not a whole number"))?,
        None => n as u64 - 1,
    };
    Ok(Observation {
        arm,
        ok,
        latency_ms,
        t_ms,
    })
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
    fn times_that_go_back_are_refused_with_their_line() {
        let csv = "arm,ok,latency_ms,t_ms\nbaseline,true,1,10\ncandidate,true,1,5\n";
        let err = read_observations(csv.as_bytes()).unwrap_err();
        assert!(
            matches!(err, ObservationError::Line { line: 3, .. }),
            "{err}"
        );
        assert!(
            err.to_string().starts_with("line 3: t_ms 5 is earlier"),
            "{err}"
        );
        let json = "{\"arm\":\"baseline\",\"ok\":true,\"latency_ms\":1,\"t_ms\":9}\n\
                    {\"arm\":\"candidate\",\"ok\":true,\"latency_ms\":1,\"t_ms\":2}\n";
        assert!(
            read_observations(json.as_bytes())
                .unwrap_err()
                .to_string()
                .starts_with("line 2:")
        );
        let untimed = read_observations(b"arm,ok,latency_ms\nbaseline,true,1\n").unwrap();
        assert!(!untimed.timed);
        assert!(
            read_observations(csv.replace(",5", ",15").as_bytes())
                .unwrap()
                .timed
        );
    }

    #[test]
    fn observation_files_parse_in_every_format() {
        let csv = "arm,ok,latency_ms,timestamp\nbaseline,true,1.5,10\ncandidate,0,2,11\n";
        let parsed = read_observations(csv.as_bytes()).unwrap().list;
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            (parsed[1].arm, parsed[1].ok, parsed[1].t_ms),
            (Arm::Candidate, false, 11)
        );
        let gz = observations_gz(&parsed);
        let replayed = read_observations(&gz).unwrap();
        assert_eq!(replayed.list, parsed);
        let err = read_observations(b"arm,ok,latency_ms\nmiddle,true,1\n").unwrap_err();
        assert!(
            matches!(err, ObservationError::Line { line: 2, .. }),
            "{err}"
        );
        assert!(
            read_observations(b"x,y\n")
                .unwrap_err()
                .to_string()
                .contains("arm")
        );
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
