//! Steps 3 and 4 as written: chaos drills (a steady-state hypothesis, faults, what must
//! happen) and disaster recovery (back up, destroy, restore, verify; RPO and RTO).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::model::{Method, Request, Severity};
use crate::units::{ByteSize, Duration, Percent, UnitError};

/// Step 3: drills. Each proves the service keeps its steady state under a fault (or
/// recovers within a bound), and that the fault is undone afterwards.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// What "working" means, checked before, during and after every drill that does not
    /// bring its own.
    #[serde(default)]
    pub steady_state: Option<Hypothesis>,
    /// How often the probes run during a drill.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Which proxies speak plain TCP (`tcp`) rather than HTTP/1.1 (`http`, the default, which
    /// also allows request faults). Keys: `candidate` or a dependency name.
    #[serde(default)]
    pub proxies: BTreeMap<String, ProxyProtocol>,
    #[schemars(with = "Vec<Drill>")]
    pub drills: Spanned<Vec<Drill>>,
}

fn default_interval() -> Duration {
    Duration::from_millis(200)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    Http,
    Tcp,
}

/// Probes that must pass for the system to count as working.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hypothesis {
    pub probes: Vec<Probe>,
    /// How long it must hold before the fault goes in (else the drill is inconclusive).
    #[serde(default = "one_second")]
    pub before: Duration,
    /// After the fault is removed, it must hold again within this.
    #[serde(default = "ten_seconds")]
    pub after: Duration,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}
fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// One probe: exactly one of `http`, `metric` or `command`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    #[serde(default)]
    pub http: Option<HttpProbe>,
    #[serde(default)]
    pub metric: Option<MetricProbe>,
    #[serde(default)]
    pub command: Option<CommandProbe>,
    /// Share of this probe's results in a phase that must pass (a steady state), or that is
    /// enough once (a side effect needs one pass).
    #[serde(default = "all_of_them")]
    pub tolerance: Percent,
}

fn all_of_them() -> Percent {
    Percent::from_ratio("100%", 1.0)
}

/// An HTTP request to the candidate and what its answer must be.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    #[serde(default = "get")]
    pub method: Method,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Accepted statuses (default: any 2xx).
    #[serde(default)]
    pub status: Vec<u16>,
    /// The answer must come within this.
    #[serde(default)]
    pub within: Option<Duration>,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn get() -> Method {
    Method::Get
}

/// A value scraped from the candidate's Prometheus endpoint (summed over matching series).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricProbe {
    #[serde(default = "metrics_path")]
    pub path: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Compare the increase since the phase began rather than the value.
    #[serde(default)]
    pub increase: bool,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

fn metrics_path() -> String {
    "/metrics".into()
}

/// A command whose exit code decides.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandProbe {
    pub run: Vec<String>,
    #[serde(default)]
    pub exit: i32,
    #[serde(default = "five_seconds")]
    pub timeout: Duration,
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// One drill: faults for a while, and what must happen.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Overrides the step's steady state for this drill.
    #[serde(default)]
    pub steady_state: Option<Hypothesis>,
    #[schemars(with = "Vec<FaultSpec>")]
    pub faults: Vec<Spanned<FaultSpec>>,
    /// How long the faults stay in (and the hypothesis is watched).
    pub duration: Duration,
    #[serde(default)]
    pub expect: Expectation,
    /// Each must be seen at least once while the faults are in (e.g. the secondary starts
    /// receiving requests, the service reports the corruption).
    #[serde(default)]
    pub side_effects: Vec<Probe>,
    /// Alerts that must fire and reach gauntlet's receiver (through Alertmanager) within
    /// `within` of the first fault going in.
    #[serde(default)]
    pub alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    /// The alert's name (`alert:` in the rule file).
    pub name: String,
    #[serde(default = "thirty_seconds")]
    pub within: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// `hold` (the hypothesis holds throughout) or `recover within 30s` (it may break, but
/// holds again within that bound of the fault going in).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Expectation {
    #[default]
    Hold,
    RecoverWithin(Duration),
}

impl FromStr for Expectation {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["hold"] => Ok(Expectation::Hold),
            ["recover", "within", bound] => Ok(Expectation::RecoverWithin(bound.parse()?)),
            _ => Err(UnitError(format!(
                "invalid expectation `{text}`: expected `hold` or `recover within DURATION`, e.g. `recover within 30s`"
            ))),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Hold => f.write_str("hold"),
            Expectation::RecoverWithin(bound) => write!(f, "recover within {bound}"),
        }
    }
}

impl<'de> Deserialize<'de> for Expectation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: UnitError| serde::de::Error::custom(e.0))
    }
}

impl Serialize for Expectation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Expectation {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Expectation".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*(hold|recover\s+within\s+\S+)\s*$",
            "description": "`hold` or `recover within DURATION`",
        })
    }
}

/// The kinds of fault a drill can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// Proxy: delay (`latency`, `jitter`).
    Latency,
    /// Proxy: at most `rate` bytes per second.
    Bandwidth,
    /// Proxy: reset connections.
    Reset,
    /// Proxy: accept, never answer (a partition).
    Blackhole,
    /// Proxy: no bytes pass; close after `after`.
    Timeout,
    /// Proxy: pass a close on only after `delay`.
    SlowClose,
    /// Proxy: answer requests with `status` without reaching the target.
    HttpAbort,
    /// Proxy: hold requests back `delay`.
    HttpDelay,
    /// Proxy: drop the first `bytes` bytes of each connection's responses.
    DropBytes,
    /// Process: kill the target with `signal`; it comes back per `restart`.
    Kill,
    /// Resource: `threads` busy threads.
    Cpu,
    /// Resource: allocate and touch `size`.
    Memory,
    /// Resource: fill the target's directory (or `path`) with `size`.
    Disk,
    /// Data: flip `bytes` bytes of `file` in the target's directory, keeping the original.
    Corrupt,
}

impl FaultType {
    pub fn is_proxy(self) -> bool {
        matches!(
            self,
            FaultType::Latency
                | FaultType::Bandwidth
                | FaultType::Reset
                | FaultType::Blackhole
                | FaultType::Timeout
                | FaultType::SlowClose
                | FaultType::HttpAbort
                | FaultType::HttpDelay
                | FaultType::DropBytes
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FaultDirection {
    Upstream,
    #[default]
    Downstream,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
pub enum KillSignal {
    #[default]
    #[serde(rename = "SIGKILL")]
    Kill,
    #[serde(rename = "SIGTERM")]
    Term,
}

/// How a killed process comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Restart {
    /// Gauntlet starts it again with the same command, port and directory.
    #[default]
    Gauntlet,
    /// Something else restarts it (a supervisor); gauntlet only waits for its health.
    Supervised,
}

/// One fault. Which fields apply depends on `kind`; the others must be left out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultType,
    /// `candidate` or a dependency name: the proxy in front of it, the process, or the
    /// directory a file or disk fault acts in.
    #[serde(default = "candidate")]
    pub target: String,
    /// Share of connections (HTTP faults: requests) affected.
    #[serde(default = "all_of_them")]
    pub toxicity: Percent,
    #[serde(default)]
    pub direction: FaultDirection,
    /// The fault comes out after this, before the drill ends.
    #[serde(default)]
    pub duration: Option<Duration>,
    #[serde(default)]
    pub latency: Option<Duration>,
    #[serde(default)]
    pub jitter: Option<Duration>,
    /// Bandwidth per second.
    #[serde(default)]
    pub rate: Option<ByteSize>,
    #[serde(default)]
    pub after: Option<Duration>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub status: Option<u16>,
    /// Bytes to drop (drop_bytes) or flip (corrupt).
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub signal: Option<KillSignal>,
    #[serde(default)]
    pub restart: Option<Restart>,
    #[serde(default)]
    pub threads: Option<u32>,
    #[serde(default)]
    pub size: Option<ByteSize>,
    /// A directory (disk) relative to the target's directory.
    #[serde(default)]
    pub path: Option<String>,
    /// The data file (corrupt), relative to the target's directory.
    #[serde(default)]
    pub file: Option<String>,
}

fn candidate() -> String {
    "candidate".into()
}

impl FaultSpec {
    /// The fields this kind needs, and the ones it allows.
    pub fn fields(kind: FaultType) -> (&'static [&'static str], &'static [&'static str]) {
        match kind {
            FaultType::Latency => (&["latency"], &["jitter"]),
            FaultType::Bandwidth => (&["rate"], &[]),
            FaultType::Reset | FaultType::Blackhole => (&[], &[]),
            FaultType::Timeout => (&["after"], &[]),
            FaultType::SlowClose | FaultType::HttpDelay => (&["delay"], &[]),
            FaultType::HttpAbort => (&["status"], &[]),
            FaultType::DropBytes => (&["bytes"], &[]),
            FaultType::Kill => (&[], &["signal", "restart"]),
            FaultType::Cpu => (&[], &["threads"]),
            FaultType::Memory => (&["size"], &[]),
            FaultType::Disk => (&["size"], &["path"]),
            FaultType::Corrupt => (&["file"], &["bytes"]),
        }
    }

    /// The kind-specific fields that are set.
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        let mut note = |set: bool, name: &'static str| {
            if set {
                given.push(name);
            }
        };
        note(self.latency.is_some(), "latency");
        note(self.jitter.is_some(), "jitter");
        note(self.rate.is_some(), "rate");
        note(self.after.is_some(), "after");
        note(self.delay.is_some(), "delay");
        note(self.status.is_some(), "status");
        note(self.bytes.is_some(), "bytes");
        note(self.signal.is_some(), "signal");
        note(self.restart.is_some(), "restart");
        note(self.threads.is_some(), "threads");
        note(self.size.is_some(), "size");
        note(self.path.is_some(), "path");
        note(self.file.is_some(), "file");
        given
    }
}

/// Step 4: disaster recovery, measured for real.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrStep {
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// The system whose data is protected (started by gauntlet): `candidate` or a dependency.
    #[serde(default = "candidate")]
    pub target: String,
    /// A SQLite database in the target's directory, backed up online by gauntlet.
    #[serde(default)]
    pub sqlite: Option<String>,
    /// Plain files in the target's directory, copied.
    #[serde(default)]
    pub files: Vec<String>,
    /// Back up with this command instead (placeholders `{dir}`: the live directory,
    /// `{backup}`: a directory to write into).
    #[serde(default)]
    pub backup_command: Option<Vec<String>>,
    /// Restore with this command instead (`{backup}`, and `{restore}`: the fresh directory).
    #[serde(default)]
    pub restore_command: Option<Vec<String>>,
    /// An extra verification after the restore (`{restore}`); must exit 0.
    #[serde(default)]
    pub verify_command: Option<Vec<String>>,
    /// Timestamped records written through the service to measure the RPO.
    #[schemars(with = "MarkerWrites")]
    pub markers: Spanned<MarkerWrites>,
    /// How long records keep being written after the backup (they are the loss to measure).
    #[serde(default = "one_second")]
    pub after_backup: Duration,
    #[serde(default = "fifteen_minutes")]
    pub rpo: Duration,
    #[serde(default = "thirty_minutes")]
    pub rto: Duration,
}

fn fifteen_minutes() -> Duration {
    Duration::from_secs(15 * 60)
}
fn thirty_minutes() -> Duration {
    Duration::from_secs(30 * 60)
}

/// `write` creates a record (`{marker}` in its body or path is a unique name); its JSON
/// answer's `id` fills `{id}` in `read`, which must answer 2xx while the record exists.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkerWrites {
    pub write: Request,
    pub read: Request,
    /// Records written before the backup.
    #[serde(default = "default_marker_count")]
    pub before: u32,
}

fn default_marker_count() -> u32 {
    3
}
