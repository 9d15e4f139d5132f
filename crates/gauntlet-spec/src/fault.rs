//! Faults: as a spec writes them ([`FaultSpec`]: `kind: latency, latency: 200ms, target:
//! quotes`, with the fields each kind takes, their checks and bounds), and as a run applies
//! them ([`Fault`]: the kind with its settings typed and its defaults resolved). The fault
//! proxy and its control API take the same [`Fault`] (as JSON); chaos drills and the rollback
//! rehearsal inject [`TargetedFault`]s.

use schemars::JsonSchema;
use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::limits::{Host, MINUTE};
use crate::units::{ByteSize, Duration, Percent};
use crate::validate::{Context, Problems, list, quoted};

/// What a fault proxy speaks: plain TCP, or HTTP/1.1 (which also allows request faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    Http,
    Tcp,
}

/// The kinds of fault a drill can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultType {
    /// Proxy: delay (`latency`, `jitter`).
    Latency,
    /// Proxy: at most `rate` bytes per second.
    Bandwidth,
    /// Proxy: reset connections: at once, or each one `after` its first bytes in the
    /// fault's direction.
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
    /// Proxy: pass the bytes on in slices of about `size` (± `variation`), `delay` apart.
    Slicer,
    /// Proxy: close each connection once it has carried `bytes` bytes in the fault's
    /// direction.
    LimitData,
    /// Process: kill the target with `signal`; it comes back per `restart`.
    Kill,
    /// Resource: `threads` busy threads.
    Cpu,
    /// Resource: allocate and touch `size`.
    Memory,
    /// Resource: fill the target's directory (or `path`) with `size`.
    Disk,
    /// Resource: load the target's file system (its directory, or `path`) with blocks
    /// written, fsynced and read back, at `rate` per second or as fast as it takes them, in
    /// a file of up to `size` (64MiB by default).
    DiskIo,
    /// Data: flip `bytes` bytes of `file` in the target's directory, keeping the original.
    Corrupt,
    /// Action: make the `apply` call when the fault goes in and the `undo` call when it
    /// comes out (purge a cache, flip a flag, raise a price, scale something to zero).
    Action,
    /// Process: the target runs with its clock `skew` ahead (`+`) or behind (`-`): gauntlet
    /// starts it again under libfaketime, and again without when the fault comes out.
    ClockSkew,
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
                | FaultType::Slicer
                | FaultType::LimitData
        )
    }
}

/// Which way the bytes a fault acts on travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client to upstream (requests).
    Upstream,
    /// Upstream to client (responses).
    #[default]
    Downstream,
    Both,
}

impl Direction {
    /// Whether a fault in this direction acts on bytes travelling `other`.
    pub fn covers(self, other: Direction) -> bool {
        self == Direction::Both || self == other
    }
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
    pub direction: Direction,
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
    /// Bytes to drop (drop_bytes), to let through (limit_data) or to flip (corrupt).
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
    /// How much a slice's size may differ from `size` (slicer).
    #[serde(default)]
    pub variation: Option<ByteSize>,
    /// A directory (disk) relative to the target's directory.
    #[serde(default)]
    pub path: Option<String>,
    /// The data file (corrupt), relative to the target's directory.
    #[serde(default)]
    pub file: Option<String>,
    /// The call that puts the fault in (action).
    #[serde(default)]
    pub apply: Option<Call>,
    /// The call that takes it out (action); it must succeed, or the drill fails.
    #[serde(default)]
    pub undo: Option<Call>,
    /// A call made after the undo that must succeed too: the proof it took (action).
    #[serde(default)]
    pub verify: Option<Call>,
    /// How far the target's clock runs ahead (`+90s`) or behind (`-5m`) (clock_skew).
    #[serde(default)]
    pub skew: Option<Skew>,
}

/// A clock offset: `+90s` (ahead), `-5m` (behind), in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skew {
    pub behind: bool,
    pub by: Duration,
}

impl Skew {
    /// Signed whole seconds: what libfaketime's `FAKETIME` takes.
    pub fn seconds(self) -> i64 {
        let s = i64::try_from(self.by.as_std().as_secs()).unwrap_or(i64::MAX);
        if self.behind { -s } else { s }
    }
}

impl std::fmt::Display for Skew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", if self.behind { "-" } else { "+" }, self.by)
    }
}

impl std::str::FromStr for Skew {
    type Err = crate::units::UnitError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (behind, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let by: Duration = rest.parse().map_err(|e: crate::units::UnitError| {
            crate::units::UnitError(format!(
                "invalid clock skew `{text}`: {}; write e.g. `+90s` or `-5m`",
                e.0
            ))
        })?;
        Ok(Skew { behind, by })
    }
}

impl<'de> Deserialize<'de> for Skew {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: crate::units::UnitError| serde::de::Error::custom(e.0))
    }
}

impl JsonSchema for Skew {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Skew".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*[+-]?\s*\d",
            "description": "a clock offset: `+90s` (ahead) or `-5m` (behind), whole seconds",
        })
    }
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
            FaultType::Reset => (&[], &["after"]),
            FaultType::Blackhole => (&[], &[]),
            FaultType::Timeout => (&["after"], &[]),
            FaultType::SlowClose | FaultType::HttpDelay => (&["delay"], &[]),
            FaultType::HttpAbort => (&["status"], &[]),
            FaultType::DropBytes | FaultType::LimitData => (&["bytes"], &[]),
            FaultType::Slicer => (&["size"], &["variation", "delay"]),
            FaultType::Kill => (&[], &["signal", "restart"]),
            FaultType::Cpu => (&[], &["threads"]),
            FaultType::Memory => (&["size"], &[]),
            FaultType::Disk => (&["size"], &["path"]),
            FaultType::DiskIo => (&[], &["rate", "size", "path"]),
            FaultType::Corrupt => (&["file"], &["bytes"]),
            FaultType::Action => (&["apply", "undo"], &["verify"]),
            FaultType::ClockSkew => (&["skew"], &[]),
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
        note(self.variation.is_some(), "variation");
        note(self.path.is_some(), "path");
        note(self.file.is_some(), "file");
        note(self.apply.is_some(), "apply");
        note(self.undo.is_some(), "undo");
        note(self.verify.is_some(), "verify");
        note(self.skew.is_some(), "skew");
        given
    }
}

fn all_of_them() -> Percent {
    Percent::from_ratio("100%", 1.0)
}

impl FaultSpec {
    /// Its kind as the spec spells it: `http_abort`.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The checks of one fault at `path` (`steps.chaos.drills[0].faults[1]`); `what` names
    /// the drill or step it belongs to, for messages.
    pub(crate) fn check(&self, cx: &Context<'_>, p: &mut Problems<'_>, path: &str, what: &str) {
        let kind = self.kind.name();
        let (needed, allowed) = FaultSpec::fields(self.kind);
        let given = self.given();
        for field in needed {
            if !given.contains(field) {
                p.key(
                    path,
                    format!("{what}: a `{kind}` fault needs `{field}`"),
                    Some(self.kind.example().into()),
                );
            }
        }
        for field in &given {
            if !needed.contains(field) && !allowed.contains(field) {
                let mut fits: Vec<&str> = needed.iter().chain(allowed.iter()).copied().collect();
                fits.sort_unstable();
                p.key(
                    &format!("{path}.{field}"),
                    format!("{what}: `{field}` does not apply to a `{kind}` fault"),
                    Some(if fits.is_empty() {
                        format!("a `{kind}` fault takes no settings besides target, toxicity, direction and duration")
                    } else {
                        format!("a `{kind}` fault takes {}", list(&fits))
                    }),
                );
            }
        }
        let needs_process = matches!(
            self.kind,
            FaultType::Corrupt | FaultType::Disk | FaultType::DiskIo | FaultType::ClockSkew
        ) || (self.kind == FaultType::Kill
            && self.restart.unwrap_or_default() == Restart::Gauntlet);
        if self.kind.is_proxy() || needs_process || self.kind == FaultType::Kill {
            let instead = match self.kind {
                // A clock is shifted by preloading libfaketime into a process gauntlet starts.
                FaultType::ClockSkew => Some(
                    " (a clock skew runs the process under libfaketime, loaded through the command gauntlet starts; a running service's clock cannot be moved from outside)",
                ),
                kind => (!kind.is_proxy()).then_some(", or use a proxy fault"),
            };
            let started = if needs_process {
                instead.or(Some(""))
            } else {
                None
            };
            cx.check_system(p, &format!("{path}.target"), what, &self.target, started);
        }
        if let Some(status) = self.status
            && !(100..=599).contains(&status)
        {
            p.key(
                &format!("{path}.status"),
                format!("{what}: {status} is not an HTTP status"),
                Some("e.g. 502, 503 or 429".into()),
            );
        }
        if self.kind == FaultType::DiskIo && self.rate.is_some_and(|r| r.bytes() < 4096) {
            p.key(
                &format!("{path}.rate"),
                format!("{what}: a disk I/O rate below 4KiB per second loads nothing"),
                Some("leave `rate` out to load the disk as fast as it takes blocks, or give e.g. `20MiB`".into()),
            );
        }
        if self.kind == FaultType::Slicer
            && let Some(size) = self.size
        {
            let variation = self.variation.map_or(0, |v| v.bytes());
            if size.bytes() == 0 || variation >= size.bytes() {
                p.key(
                    &format!("{path}.{}", if size.bytes() == 0 { "size" } else { "variation" }),
                    format!("{what}: slices of {size} ± {variation} bytes cannot be cut"),
                    Some("a slice needs at least 1 byte and a `variation` below its `size`, e.g. `size: 64B, variation: 32B`".into()),
                );
            }
        }
        if self.kind == FaultType::Bandwidth && self.rate.is_some_and(|r| r.bytes() == 0) {
            p.key(
                &format!("{path}.rate"),
                format!("{what}: a bandwidth of 0 is a blackhole"),
                Some("use `kind: blackhole`, or a rate such as `64KiB`".into()),
            );
        }
        if matches!(self.kind, FaultType::HttpAbort | FaultType::HttpDelay)
            && cx.proxy_protocol(&self.target) == ProxyProtocol::Tcp
        {
            p.key(
                path,
                format!(
                    "{what}: `{kind}` needs an HTTP proxy, but `{}` is set to `tcp`",
                    quoted(&self.target)
                ),
                None,
            );
        }
        if let Some(file) = &self.file {
            p.system_file(&format!("{path}.file"), file, what);
        }
        if let Some(dir) = &self.path {
            p.system_file(&format!("{path}.path"), dir, what);
        }
        for (key, call) in [
            ("apply", &self.apply),
            ("undo", &self.undo),
            ("verify", &self.verify),
        ] {
            if let Some(call) = call {
                call.check(cx, p, &format!("{path}.{key}"), what);
            }
        }
        self.bounds(p, path, &cx.host);
    }

    /// Sizes, counts and durations a host can bear.
    fn bounds(&self, p: &mut Problems<'_>, at: &str, host: &Host) {
        for (key, value) in [
            ("latency", self.latency),
            ("jitter", self.jitter),
            ("after", self.after),
            ("delay", self.delay),
        ] {
            if let Some(value) = value {
                p.duration(&format!("{at}.{key}"), value, true, 10 * MINUTE);
            }
        }
        if let Some(duration) = self.duration {
            p.duration(&format!("{at}.duration"), duration, false, 30 * MINUTE);
        }
        match self.kind {
            FaultType::Corrupt => {
                if let Some(bytes) = self.bytes {
                    p.count(&format!("{at}.bytes"), bytes, 1_000_000);
                }
            }
            FaultType::DropBytes | FaultType::LimitData => {
                if let Some(bytes) = self.bytes {
                    p.count(&format!("{at}.bytes"), bytes, 1 << 30);
                }
            }
            FaultType::Slicer => {
                if let Some(size) = self.size {
                    p.count(&format!("{at}.size"), size.bytes(), 1 << 20);
                }
            }
            FaultType::Cpu => {
                if let Some(threads) = self.threads {
                    let max = u64::from(host.cpus) * 4;
                    if u64::from(threads) > max {
                        p.key(
                            &format!("{at}.threads"),
                            format!(
                                "`threads` is {threads}, more than four per CPU of this host ({} CPUs)",
                                host.cpus
                            ),
                            Some(format!(
                                "at most {max}: more busy threads add no pressure, only scheduling"
                            )),
                        );
                    }
                }
            }
            FaultType::Memory => {
                let max = host.memory / 4 * 3;
                if let Some(size) = self.size.filter(|s| s.bytes() > max) {
                    p.key(
                        &format!("{at}.size"),
                        format!(
                            "`size` is {size}, more than three quarters of this host's memory ({} MiB)",
                            host.memory >> 20
                        ),
                        Some(format!(
                            "at most {} MiB: beyond that the drill hurts the host, not the service",
                            max >> 20
                        )),
                    );
                }
            }
            FaultType::Disk => {
                if let Some(size) = self.size {
                    p.count(&format!("{at}.size"), size.bytes(), 100 << 30);
                }
            }
            FaultType::DiskIo => {
                if let Some(size) = self.size {
                    p.count(&format!("{at}.size"), size.bytes(), 10 << 30);
                }
            }
            FaultType::ClockSkew => {
                if let Some(skew) = self.skew {
                    let by = skew.by.as_std();
                    if by.is_zero() || by.subsec_nanos() != 0 {
                        p.key(
                            &format!("{at}.skew"),
                            format!("a clock skew of `{skew}` is not a whole, non-zero number of seconds"),
                            Some("e.g. `+90s` or `-5m`".into()),
                        );
                    }
                    p.duration(&format!("{at}.skew"), skew.by, true, 365 * 24 * 60 * MINUTE);
                }
            }
            _ => {}
        }
    }
}

impl FaultType {
    /// As the spec spells it: `slow_close`.
    pub fn name(self) -> &'static str {
        match self {
            FaultType::Latency => "latency",
            FaultType::Bandwidth => "bandwidth",
            FaultType::Reset => "reset",
            FaultType::Blackhole => "blackhole",
            FaultType::Timeout => "timeout",
            FaultType::SlowClose => "slow_close",
            FaultType::HttpAbort => "http_abort",
            FaultType::HttpDelay => "http_delay",
            FaultType::DropBytes => "drop_bytes",
            FaultType::Slicer => "slicer",
            FaultType::LimitData => "limit_data",
            FaultType::Kill => "kill",
            FaultType::Cpu => "cpu",
            FaultType::Memory => "memory",
            FaultType::Disk => "disk",
            FaultType::DiskIo => "disk_io",
            FaultType::Corrupt => "corrupt",
            FaultType::Action => "action",
            FaultType::ClockSkew => "clock_skew",
        }
    }

    fn example(self) -> &'static str {
        use FaultType::*;
        match self {
            Latency => {
                "e.g. `{kind: latency, target: quotes-primary, latency: 200ms, jitter: 50ms}`"
            }
            Bandwidth => {
                "e.g. `{kind: bandwidth, target: quotes-primary, rate: 64KiB}` (per second)"
            }
            Timeout => "e.g. `{kind: timeout, target: quotes-primary, after: 2s}`",
            SlowClose => "e.g. `{kind: slow_close, target: quotes-primary, delay: 1s}`",
            HttpDelay => "e.g. `{kind: http_delay, target: quotes-primary, delay: 300ms}`",
            HttpAbort => {
                "e.g. `{kind: http_abort, target: quotes-primary, status: 503, toxicity: 50%}`"
            }
            DropBytes => "e.g. `{kind: drop_bytes, target: quotes-primary, bytes: 16}`",
            Slicer => {
                "e.g. `{kind: slicer, target: quotes-primary, size: 64B, variation: 32B, delay: 1ms}`"
            }
            LimitData => "e.g. `{kind: limit_data, target: quotes-primary, bytes: 4096}`",
            Memory => "e.g. `{kind: memory, size: 256MiB}`",
            Disk => "e.g. `{kind: disk, size: 1GiB}`",
            DiskIo => {
                "e.g. `{kind: disk_io, rate: 20MiB, size: 256MiB}` (per second; no rate: as fast as the disk takes it)"
            }
            Corrupt => "e.g. `{kind: corrupt, file: data.json, bytes: 8}`",
            ClockSkew => "e.g. `{kind: clock_skew, target: payments, skew: -90s}`",
            Action => {
                "e.g. `{kind: action, apply: {http: {path: /admin/flags, body: '{\"cache\": false}'}}, undo: {http: {path: /admin/flags, body: '{\"cache\": true}'}}}` (an action with nothing to put back: make `undo` the call that shows the system whole again)"
            }
            Reset | Blackhole | Kill | Cpu => "",
        }
    }
}

/// A fault as a run applies it. In JSON (the fault proxy's control API) the kind's fields sit
/// beside the others, durations in milliseconds: `{"kind": "latency", "latency_ms": 200,
/// "toxicity": 0.5}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Share of connections (HTTP faults: of requests) affected, 0 to 1.
    #[serde(default = "everything")]
    pub toxicity: f64,
    #[serde(default)]
    pub direction: Direction,
    /// It comes out by itself after this; none: when it is removed.
    #[serde(default, rename = "duration_ms", with = "millis_opt")]
    pub duration: Option<StdDuration>,
}

fn everything() -> f64 {
    1.0
}

/// What a fault does, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay every chunk by `latency`, ± up to `jitter`.
    Latency {
        #[serde(rename = "latency_ms", with = "millis")]
        latency: StdDuration,
        #[serde(rename = "jitter_ms", with = "millis", default)]
        jitter: StdDuration,
    },
    /// At most this many bytes per second.
    Bandwidth { bytes_per_second: u64 },
    /// Reset the connection (RST). With no `after`: open ones at once, new ones on accept;
    /// with one: each connection `after` the first bytes it carries in the fault's direction
    /// (those bytes go no further).
    Reset {
        #[serde(rename = "after_ms", with = "millis", default)]
        after: StdDuration,
    },
    /// Accept, never answer: no bytes pass until the fault is removed (a partition).
    Blackhole,
    /// No bytes pass; the connection is closed after `after`.
    Timeout {
        #[serde(rename = "after_ms", with = "millis")]
        after: StdDuration,
    },
    /// When one side closes, wait this long before passing the close on.
    SlowClose {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: StdDuration,
    },
    /// Answer the request with this status without reaching upstream (`http` proxies).
    HttpAbort { status: u16 },
    /// Hold the request back this long before it goes upstream (`http` proxies).
    HttpDelay {
        #[serde(rename = "delay_ms", with = "millis")]
        delay: StdDuration,
    },
    /// Drop the first `bytes` bytes each connection carries in the direction.
    DropBytes { bytes: u64 },
    /// Pass the bytes on in slices of `average_size` ± `size_variation` bytes, `delay` apart.
    Slicer {
        average_size: u64,
        #[serde(default)]
        size_variation: u64,
        #[serde(rename = "delay_us", with = "micros", default)]
        delay: StdDuration,
    },
    /// Close the connection once it has carried `bytes` bytes in the direction.
    LimitData { bytes: u64 },
    /// Kill the system's process group with `signal`; it comes back per `restart`.
    Kill {
        signal: KillSignal,
        restart: Restart,
    },
    /// This many busy threads.
    Cpu { threads: u32 },
    /// Allocate and touch this many bytes.
    Memory { bytes: u64 },
    /// Fill the system's directory (or `path` under it) with this many bytes.
    Disk { bytes: u64, path: Option<String> },
    /// Write (fsynced) and read back blocks in a file of up to `file_bytes` in the system's
    /// directory (or `path`), at `bytes_per_second` or as fast as the disk takes them.
    DiskIo {
        bytes_per_second: Option<u64>,
        file_bytes: u64,
        path: Option<String>,
    },
    /// Flip `bytes` bytes of `file` in the system's directory, keeping the original.
    Corrupt { file: String, bytes: u64 },
    /// Start the system again with its clock this many seconds ahead (negative: behind).
    ClockSkew { seconds: i64 },
    /// Make `apply` now and `undo` when the fault comes out, then `verify`.
    Action {
        apply: Box<Call>,
        undo: Box<Call>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verify: Option<Box<Call>>,
    },
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The kind without its settings.
    pub fn kind(&self) -> FaultType {
        match self {
            FaultKind::Latency { .. } => FaultType::Latency,
            FaultKind::Bandwidth { .. } => FaultType::Bandwidth,
            FaultKind::Reset { .. } => FaultType::Reset,
            FaultKind::Blackhole => FaultType::Blackhole,
            FaultKind::Timeout { .. } => FaultType::Timeout,
            FaultKind::SlowClose { .. } => FaultType::SlowClose,
            FaultKind::HttpAbort { .. } => FaultType::HttpAbort,
            FaultKind::HttpDelay { .. } => FaultType::HttpDelay,
            FaultKind::DropBytes { .. } => FaultType::DropBytes,
            FaultKind::Slicer { .. } => FaultType::Slicer,
            FaultKind::LimitData { .. } => FaultType::LimitData,
            FaultKind::Kill { .. } => FaultType::Kill,
            FaultKind::Cpu { .. } => FaultType::Cpu,
            FaultKind::Memory { .. } => FaultType::Memory,
            FaultKind::Disk { .. } => FaultType::Disk,
            FaultKind::DiskIo { .. } => FaultType::DiskIo,
            FaultKind::Corrupt { .. } => FaultType::Corrupt,
            FaultKind::Action { .. } => FaultType::Action,
            FaultKind::ClockSkew { .. } => FaultType::ClockSkew,
        }
    }

    /// Whether a fault proxy applies it (the others act on processes, resources or data).
    pub fn is_proxy(&self) -> bool {
        self.kind().is_proxy()
    }

    /// A reset that acts on every connection at once (not one due after a connection's
    /// first bytes).
    pub fn resets_at_once(&self) -> bool {
        matches!(self, FaultKind::Reset { after } if after.is_zero())
    }

    /// Faults that act on requests rather than bytes.
    pub fn per_request(&self) -> bool {
        matches!(
            self,
            FaultKind::HttpAbort { .. } | FaultKind::HttpDelay { .. }
        )
    }
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            toxicity: 1.0,
            direction: Direction::default(),
            duration: None,
        }
    }

    /// Why the fault cannot be applied, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Some(format!("toxicity {} is not between 0 and 1", self.toxicity));
        }
        match &self.kind {
            FaultKind::Bandwidth {
                bytes_per_second: 0,
            } => Some("bandwidth must be at least 1 byte per second".into()),
            FaultKind::HttpAbort { status } if !(100..=599).contains(status) => {
                Some(format!("{status} is not an HTTP status"))
            }
            FaultKind::Slicer {
                average_size: 0, ..
            } => Some("a slice must be at least 1 byte".into()),
            FaultKind::Slicer {
                average_size,
                size_variation,
                ..
            } if size_variation >= average_size => Some(format!(
                "a slice size variation of {size_variation} bytes must be less than the average size ({average_size} bytes)"
            )),
            _ => None,
        }
    }

    /// Reads a proxy fault from JSON (the control API's body), refusing fields it does not
    /// know (serde cannot both flatten the kind and deny unknown fields, so the check
    /// compares with what was understood) and kinds a proxy does not apply.
    pub fn from_json(text: &[u8]) -> Result<Self, FaultError> {
        Self::read_json(text).map_err(FaultError::Body)
    }

    fn read_json(text: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let kinds: Vec<&str> = FaultType::ALL
            .iter()
            .filter(|k| k.is_proxy())
            .map(|k| k.name())
            .collect();
        // Name a wrong kind as such, not by a field its variant would have needed.
        match value.get("kind") {
            Some(serde_json::Value::String(kind)) if kinds.contains(&kind.as_str()) => {}
            Some(kind) => {
                return Err(format!(
                    "`kind` {kind} is not a proxy fault kind: expected one of {}",
                    kinds.join(", ")
                ));
            }
            None => return Err(format!("`kind` is missing: one of {}", kinds.join(", "))),
        }
        let fault: Fault = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        let understood = serde_json::to_value(&fault).map_err(|e| e.to_string())?;
        if let (Some(given), Some(known)) = (value.as_object(), understood.as_object())
            && let Some(unknown) = given.keys().find(|k| !known.contains_key(*k))
        {
            let mut fields: Vec<&str> = known.keys().map(String::as_str).collect();
            fields.sort_unstable();
            return Err(format!(
                "unknown field `{unknown}` for a {} fault: expected {}",
                fault.kind.name(),
                fields.join(", ")
            ));
        }
        Ok(fault)
    }
}

/// A fault that cannot be applied as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// A field the fault's kind needs (what validation refuses first).
    #[error("a `{kind}` fault needs `{field}`")]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
    /// A control-API body that is not a proxy fault.
    #[error("{0}")]
    Body(String),
}

/// A fault and the system it acts on (`candidate` or a dependency): through the proxy in
/// front of it, on its process, or in its directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetedFault {
    pub target: String,
    pub fault: Fault,
}

impl FaultType {
    pub const ALL: [FaultType; 19] = [
        FaultType::Latency,
        FaultType::Bandwidth,
        FaultType::Reset,
        FaultType::Blackhole,
        FaultType::Timeout,
        FaultType::SlowClose,
        FaultType::HttpAbort,
        FaultType::HttpDelay,
        FaultType::DropBytes,
        FaultType::Slicer,
        FaultType::LimitData,
        FaultType::Kill,
        FaultType::Cpu,
        FaultType::Memory,
        FaultType::Disk,
        FaultType::DiskIo,
        FaultType::Corrupt,
        FaultType::Action,
        FaultType::ClockSkew,
    ];
}

impl FaultSpec {
    /// The fault as a run applies it, its defaults resolved (busy threads: one per CPU of
    /// `host`; a corruption: 8 bytes). `Err` names a field the kind needs and lacks (what
    /// validation refuses first).
    pub fn resolve(&self, host: &Host) -> Result<TargetedFault, FaultError> {
        let needs = |field: &'static str| FaultError::Missing {
            kind: self.kind.name(),
            field,
        };
        let ms = |d: Option<Duration>, field: &'static str| {
            d.map(|d| d.as_std()).ok_or_else(|| needs(field))
        };
        let kind = match self.kind {
            FaultType::Latency => FaultKind::Latency {
                latency: ms(self.latency, "latency")?,
                jitter: self.jitter.map_or(StdDuration::ZERO, |d| d.as_std()),
            },
            FaultType::Bandwidth => FaultKind::Bandwidth {
                bytes_per_second: self.rate.map(|r| r.bytes()).ok_or_else(|| needs("rate"))?,
            },
            FaultType::Reset => FaultKind::Reset {
                after: self.after.map_or(StdDuration::ZERO, |d| d.as_std()),
            },
            FaultType::Blackhole => FaultKind::Blackhole,
            FaultType::Timeout => FaultKind::Timeout {
                after: ms(self.after, "after")?,
            },
            FaultType::SlowClose => FaultKind::SlowClose {
                delay: ms(self.delay, "delay")?,
            },
            FaultType::HttpAbort => FaultKind::HttpAbort {
                status: self.status.ok_or_else(|| needs("status"))?,
            },
            FaultType::HttpDelay => FaultKind::HttpDelay {
                delay: ms(self.delay, "delay")?,
            },
            FaultType::DropBytes => FaultKind::DropBytes {
                bytes: self.bytes.ok_or_else(|| needs("bytes"))?,
            },
            FaultType::Slicer => FaultKind::Slicer {
                average_size: self.size.map(|s| s.bytes()).ok_or_else(|| needs("size"))?,
                size_variation: self.variation.map_or(0, |v| v.bytes()),
                delay: self.delay.map_or(StdDuration::ZERO, |d| d.as_std()),
            },
            FaultType::LimitData => FaultKind::LimitData {
                bytes: self.bytes.ok_or_else(|| needs("bytes"))?,
            },
            FaultType::Kill => FaultKind::Kill {
                signal: self.signal.unwrap_or_default(),
                restart: self.restart.unwrap_or_default(),
            },
            FaultType::Cpu => FaultKind::Cpu {
                threads: self.threads.unwrap_or(host.cpus),
            },
            FaultType::Memory => FaultKind::Memory {
                bytes: self.size.map(|s| s.bytes()).ok_or_else(|| needs("size"))?,
            },
            FaultType::Disk => FaultKind::Disk {
                bytes: self.size.map(|s| s.bytes()).ok_or_else(|| needs("size"))?,
                path: self.path.clone(),
            },
            FaultType::DiskIo => FaultKind::DiskIo {
                bytes_per_second: self.rate.map(|r| r.bytes()),
                file_bytes: self.size.map_or(64 << 20, |s| s.bytes()),
                path: self.path.clone(),
            },
            FaultType::Corrupt => FaultKind::Corrupt {
                file: self.file.clone().ok_or_else(|| needs("file"))?,
                bytes: self.bytes.unwrap_or(8),
            },
            FaultType::ClockSkew => FaultKind::ClockSkew {
                seconds: self.skew.map(Skew::seconds).ok_or_else(|| needs("skew"))?,
            },
            FaultType::Action => FaultKind::Action {
                apply: Box::new(self.apply.clone().ok_or_else(|| needs("apply"))?),
                undo: Box::new(self.undo.clone().ok_or_else(|| needs("undo"))?),
                verify: self.verify.clone().map(Box::new),
            },
        };
        Ok(TargetedFault {
            target: self.target.clone(),
            fault: Fault {
                kind,
                toxicity: self.toxicity.ratio(),
                direction: self.direction,
                duration: self.duration.map(|d| d.as_std()),
            },
        })
    }
}

/// Durations as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod millis_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
    }
}

/// Durations as whole microseconds in JSON (a slicer's delay, as Toxiproxy takes it).
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}
