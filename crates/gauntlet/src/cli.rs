//! The command line, defined once as data; help and shell completions come from here.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use gauntlet_spec::StepName;

const ABOUT: &str = "Decide whether a release may ship by exercising the real system.";
const LONG_ABOUT: &str = "\
Gauntlet drives real traffic and real probes against the candidate, keeps the evidence, and \
ends in GO, CONDITIONAL, NO-GO or INCONCLUSIVE with an exit code a CI pipeline can trust.

Start with `gauntlet demo`: it runs everything against a built-in demo system and writes \
the spec it used, which you can copy. Then `gauntlet validate gauntlet.yaml` and \
`gauntlet run gauntlet.yaml`.

Exit codes, for every command: 0 GO (or CONDITIONAL without --strict), 1 NO-GO, ABORTED or \
a refused verification, 2 invalid input, 3 INCONCLUSIVE, 4 an internal error of gauntlet \
itself (the run store unreadable, a full disk, a bug). A closed or full stdout or stderr never \
changes these: output that cannot be written is dropped.";

#[derive(Debug, Parser)]
#[command(name = "gauntlet", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The run store: a SQLite file, or a PostgreSQL database shared with other gauntlets
    /// (postgres://USER:PASSWORD@HOST:PORT/DB; give it through GAUNTLET_STORE to keep the
    /// password out of the process list).
    #[arg(
        long,
        global = true,
        value_name = "FILE|URL",
        default_value = ".gauntlet/gauntlet.db",
        env = "GAUNTLET_STORE",
        hide_env_values = true
    )]
    pub store: gauntlet_store::Location,
    /// No progress or notes on stderr; the outcome is still printed (on stdout).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The keyring that signs locks, manifests and decisions and verifies them (default:
    /// your own, $XDG_CONFIG_HOME/gauntlet/keys or ~/.config/gauntlet/keys; never one found
    /// in the current directory). With --root, a keyring listing (its folder or keyring.json).
    #[arg(long, global = true, value_name = "DIR", env = "GAUNTLET_KEYRING")]
    pub keyring: Option<PathBuf>,
}

/// Which keys a verification trusts, when not the keyring's.
#[derive(Debug, Clone, Default, Args)]
pub struct TrustArgs {
    /// Trust only this minisign public key (a `.pub` file or its base64 line). Revocations
    /// still count: the key's own status statements beside the file, in --revocations and
    /// in your keyring.
    #[arg(long, value_name = "PUB", conflicts_with = "root")]
    pub key: Option<String>,
    /// Trust the keyring listing (--keyring DIR or FILE) that this root key signs: pin the
    /// root once in CI and rotate signing keys without touching the pin.
    #[arg(long, value_name = "PUB")]
    pub root: Option<String>,
    /// Also read key status statements (revocations, retirements) here: a file or a folder;
    /// repeatable; also GAUNTLET_REVOCATIONS (paths separated by `:`).
    #[arg(long, value_name = "PATH")]
    pub revocations: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole gauntlet against the built-in demo system.
    Demo(DemoArgs),
    /// Run the gauntlet a spec describes.
    Run(RunArgs),
    /// Check a spec without running anything (errors as file:line:col, exit 2).
    Validate {
        /// The spec file, e.g. gauntlet.yaml.
        file: PathBuf,
        /// Check it for a run of these steps only (what is skipped is not checked, and listed).
        #[command(flatten)]
        steps: StepChoice,
    },
    /// Print the JSON Schema of the spec, for editor completion.
    Schema,
    /// List past runs, newest first.
    History {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show one run (an id, a unique prefix of one, `latest`, or the run's directory).
    Show {
        run: String,
        /// Print the stored report.json.
        #[arg(long)]
        json: bool,
    },
    /// Confirm a runbook's manual step that a running run is waiting for (an operator's
    /// answer: `gauntlet confirm latest 'on-call confirms'`); without STEP, the one waiting.
    Confirm {
        /// The run: `latest`, an id prefix or its directory.
        run: String,
        /// The step's name, as the run announced it.
        step: Option<String>,
        /// Who confirms (default: $USER), recorded in the report.
        #[arg(long)]
        by: Option<String>,
    },
    /// Write a run's gameday report (gameday.md and gameday.json in its directory): each
    /// scenario's injection, expectations, observations, incident timeline, evidence and
    /// residual risk, and one action item per expectation not met, with owner and due date.
    Gameday {
        /// The run: `latest`, an id prefix or its directory.
        run: String,
        /// Write the two files here instead of the run directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the multi-window, multi-burn-rate Prometheus alert rules (14.4x over 1h and 5m,
    /// 6x over 6h and 30m, 1x over 3d and 6h) for the SLOs of OpenSLO v1 files.
    SloRules {
        /// OpenSLO files (SLO, SLI, AlertPolicy documents).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Acknowledge a drill's page (or the rollback rehearsal's, `rollback-rehearsal`) in a
    /// running run: the incident timeline's MTTA ends here.
    Ack {
        /// The run: `latest`, an id prefix or its directory.
        run: String,
        /// The drill whose page this acknowledges.
        drill: String,
        /// Who acknowledges (default: $USER), recorded in the report.
        #[arg(long)]
        by: Option<String>,
    },
    /// Undo whatever a killed run left behind (processes, faults).
    Recover {
        /// Only this run (default: every run whose process is gone).
        #[arg(long)]
        run: Option<String>,
    },
    /// Run chaos drills on their own (a manual gameday): the systems come up, the named
    /// drills run with their timeline printed live, everything is undone. Each drill also
    /// writes a Chaos Toolkit journal (evidence/chaos/drill-NAME.chaostoolkit.json).
    ///
    /// With --import EXPERIMENT (a Chaos Toolkit experiment, JSON or YAML): prints the
    /// `steps.chaos` section that does the same (steady-state probes, one drill of its faults)
    /// and says on stderr what it mapped and how, and what it could not map and why. Exit 0
    /// when something became a fault, 2 when the file is not an experiment or nothing did.
    Chaos {
        /// The spec file, e.g. gauntlet.yaml.
        #[arg(required_unless_present = "import")]
        file: Option<PathBuf>,
        /// The drill to run (repeatable; default: every drill).
        #[arg(long, value_name = "NAME")]
        drill: Vec<String>,
        /// A Chaos Toolkit experiment to turn into drills (printed, not run).
        #[arg(long, value_name = "EXPERIMENT", conflicts_with_all = ["file", "drill"])]
        import: Option<PathBuf>,
        #[command(flatten)]
        execution: Execution,
    },
    /// Replay recorded observations through the canary's judges (offline verdict).
    ///
    /// FILE holds one observation per line: JSON lines (optionally gzipped, as the canary
    /// records them) or CSV with the columns arm, ok, latency_ms and optionally t_ms.
    /// Exit 0 when the judges accept, 1 when they reject, 3 when they do not decide.
    Judge(JudgeArgs),
    /// Load-test a URL: open model at a rate, or closed model with N connections.
    Load {
        /// e.g. http://127.0.0.1:8080/items/1
        url: String,
        /// Requests per second (open model); omit for the closed model.
        #[arg(long)]
        rate: Option<String>,
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
        #[arg(long)]
        http2: bool,
        #[arg(long)]
        json: bool,
    },
    /// Run a fault proxy in front of an address, with its control API (a manual gameday), or
    /// answer Toxiproxy's API (--toxiproxy) so Toxiproxy's clients drive gauntlet's proxies.
    ///
    /// Faults are added and removed over the control API with the token it prints once
    /// (or GAUNTLET_PROXY_TOKEN), e.g.
    /// `curl -H "Authorization: Bearer $TOKEN" -X POST 127.0.0.1:8474/proxies/proxy/faults -d '{"kind":"latency","latency_ms":200}'`
    /// and `curl -H "Authorization: Bearer $TOKEN" -X DELETE 127.0.0.1:8474/proxies/proxy/faults`.
    /// A fault added without `duration_ms` comes out after --fault-ttl. Runs until Ctrl-C;
    /// every fault goes with the process.
    ///
    /// Toxiproxy mode (--toxiproxy [ADDR], 127.0.0.1:8474 by default): the Toxiproxy v2 HTTP
    /// API (proxies, populate, reset, toxics: latency, bandwidth, slow_close, timeout,
    /// reset_peer, slicer, limit_data) for existing clients and scripts. Toxiproxy's clients
    /// send no token, so this API takes none: it listens on loopback only, opens proxies on
    /// loopback only (0.0.0.0 means 127.0.0.1), and refuses a foreign Host or Origin, so web
    /// pages cannot reach it. Its proxies pass plain TCP. Toxics stay until removed unless
    /// --fault-ttl is given. Gauntlet's own control API keeps its token (on --control, a free
    /// loopback port by default in this mode) and sees the same proxies.
    Proxy(ProxyArgs),
    /// Lock and sign protected files: `gauntlet lock --spec gauntlet.yaml` (the spec and its
    /// `trust.protected` files) or `gauntlet lock FILE... --lock gauntlet.lock`.
    Lock {
        files: Vec<PathBuf>,
        #[arg(long, conflicts_with = "lock")]
        spec: Option<PathBuf>,
        #[arg(long)]
        lock: Option<PathBuf>,
        /// Which part of the manifest's version goes up (default: patch, when anything changed).
        #[arg(long, value_enum)]
        bump: Option<BumpArg>,
    },
    /// Check the protected files against their signed lock (a project's gauntlet.lock, or a
    /// run's release.lock with its SBOM and flags snapshot): exit 0 unchanged, 1 changed or
    /// badly signed (naming the file and key path), 2 bad input (FILE is not a lock). What CI
    /// runs before a deploy.
    Verify {
        /// The project's spec: its lock and protected files (with --lock: the project whose
        /// files a run's release.lock is checked against).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The lock to check (default: the spec's, else gauntlet.lock here).
        #[arg(long)]
        lock: Option<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
        /// Accept files whose canonical content is unchanged (comments, whitespace, key order).
        #[arg(long)]
        semantic: bool,
        #[arg(long)]
        json: bool,
    },
    /// Signing keys: generate, list, rotate, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Serve the API that pipelines and people share (tokens with roles, an audit log,
    /// /metrics); see `server.yaml` in the README.
    Serve {
        /// The server's config (listen address, store, tokens, audit log, services).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Logs on stderr as JSON lines or as text.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// The server's tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The server's audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Signed decisions (DSSE envelopes around in-toto statements).
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Write a CycloneDX 1.5 SBOM from lock files (Cargo.lock, package-lock.json or
    /// npm-shrinkwrap.json, requirements*.txt, poetry.lock, go.sum), each recognised by its
    /// name and content.
    Sbom {
        #[arg(required = true)]
        lockfiles: Vec<PathBuf>,
        /// The application the SBOM describes (default: the spec's service, else the name a
        /// lock file gives its project, else the current directory's name).
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "release-version")]
        version: Option<String>,
        /// The spec whose service names the application (default: gauntlet.yaml here, if any).
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// What changed between two runs (`latest` or an id prefix each): the spec by key path,
    /// protected files, flags, SBOM and the green fingerprint. Exit 0 none, 1 some.
    Drift {
        older: String,
        newer: String,
        #[arg(long)]
        json: bool,
    },
    /// Sign off a run as a role (`--role security`): signs the digest of the run's report with
    /// your keyring key. `--verify` only checks the run's sign-offs. Prints the decision once
    /// the sign-offs are counted.
    Signoff {
        run: String,
        #[arg(long, required_unless_present = "verify")]
        role: Option<String>,
        /// Who signs (default: the role's owner in the spec).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Print the production-readiness checklist of a run (default: the latest): each item's
    /// status, owner and evidence, scored from the run's stored checks; waivers as of now.
    /// Exit 1 when the score is below the minimum or a waiver has expired.
    Readiness {
        #[arg(default_value = "latest")]
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Render a run's readiness certificate (RUN_DIR/certificate.md and .html): decision,
    /// conditions with owners and deadlines, verified sign-offs, readiness by category,
    /// gates, steps, the green fingerprint and the attestation's digest.
    Certificate {
        #[arg(default_value = "latest")]
        run: String,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Busy threads, touched memory and disk I/O for a chaos drill (started by the chaos step).
    #[command(hide = true)]
    Stress {
        /// Busy threads.
        #[arg(long, default_value_t = 0)]
        cpu: u32,
        /// Bytes to allocate and touch.
        #[arg(long, default_value_t = 0)]
        memory: u64,
        /// Write, fsync and read back blocks of this file (on the file system under test).
        #[arg(long, value_name = "FILE")]
        io: Option<PathBuf>,
        /// How large the I/O file may grow (bytes).
        #[arg(long, default_value_t = 64 << 20)]
        io_size: u64,
        /// Bytes written per second; without it, as fast as the disk takes them.
        #[arg(long, value_name = "BYTES")]
        io_rate: Option<u64>,
        /// Where the I/O load writes what it achieved (JSON), every 200 ms.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Stop after this many seconds (at most an hour).
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
        /// Written once the memory is touched and the threads run: the pressure is in force.
        #[arg(long, value_name = "FILE")]
        ready: Option<PathBuf>,
    },
    /// The demo system's processes (started by `gauntlet demo`).
    #[command(hide = true, name = "demo-service", subcommand)]
    DemoService(DemoService),
}

impl Command {
    /// Whether what the command prints on stdout is its result, so that output lost to a
    /// full disk is a failure rather than a success (a decision's exit code never depends on it).
    pub fn prints_result(&self) -> bool {
        matches!(
            self,
            Command::SloRules { .. }
                | Command::Schema
                | Command::History { .. }
                | Command::Show { .. }
                | Command::Completions { .. }
                | Command::Load { .. }
                | Command::Sbom { out: None, .. }
                | Command::Keys(KeysCommand::List { .. })
                | Command::Token(TokenCommand::Create { .. } | TokenCommand::List { .. })
        )
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BumpArg {
    Major,
    Minor,
    Patch,
}

/// The keyring (--keyring): a root key signs its listing; signing keys sign the rest.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// A new signing key (refused if one is active: rotate instead); the first one also makes
    /// the keyring's root key. `--encrypt` protects them with a password (from
    /// GAUNTLET_KEY_PASSWORD, or asked for on the terminal).
    Generate {
        #[arg(long)]
        encrypt: bool,
    },
    /// The keys, their status, and the root key (its line is what CI pins with --root).
    List {
        #[arg(long)]
        json: bool,
    },
    /// A new active key; the old one verifies until `--grace` from now (and signs a statement
    /// saying so, for verifiers that pin it).
    Rotate {
        #[arg(long, default_value = "7d")]
        grace: String,
        #[arg(long)]
        encrypt: bool,
    },
    /// Nothing signed by the key verifies any more, in any mode: the listing says so, and the
    /// key signs its own revocation statement (status/ID.revoked.json) for verifiers that pin
    /// it with --key. Its secret key is deleted.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Import keys the stock minisign tool made: a public key (`.pub`) verifies what it signs;
    /// a secret key (unencrypted, as `minisign -G -W` writes it, or password-protected)
    /// becomes the active signing key, the previous one retired with --grace.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value = "7d")]
        grace: String,
    },
    /// Sign a keyring listing that nobody signed (one made by an earlier gauntlet) with the
    /// keyring's root key, making one if needed. Check its keys first (`keyring.json`).
    Adopt,
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Check a run's attestation (attestation.dsse.json or test-result.dsse.json), bind it to
    /// what you are about to ship, and print its decision. It must be bound: to each
    /// --artifact (its sha256 among the subjects) and/or to the signed release manifest
    /// (--manifest, or release.lock beside the attestation); it says what it bound and what
    /// it did not. Exit 0 for a verified, bound GO (CONDITIONAL too unless --strict), 1 for a
    /// refused signature or binding, NO-GO, ABORTED (or CONDITIONAL with --strict), 2 for bad
    /// input, 3 for INCONCLUSIVE.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Require this file's sha256 among the attestation's subjects (repeatable).
        #[arg(long)]
        artifact: Vec<PathBuf>,
        /// Require the release subject to be this signed release manifest (default: the
        /// release.lock beside the attestation, when there is one).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Exit 1 on CONDITIONAL, not 0.
        #[arg(long)]
        strict: bool,
        #[arg(long)]
        json: bool,
    },
    /// Vouch for an attested readiness item: sign its claim (item, owner role, who, evidence,
    /// status, as the spec states them) with your key, which must be the owner role's key in
    /// `signoffs.keys`. Writes `attestations/ITEM.json` and its `.minisig` beside the spec.
    Item {
        /// The item's name in the checklist, e.g. "threat model reviewed".
        item: String,
        #[arg(long, default_value = "gauntlet.yaml")]
        spec: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProxyProtocol {
    Http,
    Tcp,
}

/// `gauntlet judge`: the judges from the flags, or from a spec's canary.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Observations: a run's `observations.jsonl.gz`, or CSV with `arm,ok,latency_ms[,t_ms]`.
    pub file: PathBuf,
    /// Take the judges and the stage from this spec's canary (default, without judge flags:
    /// the run's spec.yaml when FILE is a run's evidence).
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// The canary stage (1-based) whose minimum sample count and bake apply (default: from
    /// the file name, else 1).
    #[arg(long)]
    pub stage: Option<usize>,
    /// A judge to run (repeatable): `error-rate` (needs --p0), `two-sample`, `latency`.
    /// Default: `error-rate` with --p0, else `two-sample`. With a judge flag no spec is read.
    #[arg(long = "judge", value_name = "JUDGE", value_enum)]
    pub judges: Vec<JudgeArg>,
    /// The known error rate the SPRT tests against, e.g. `1%`.
    #[arg(long, value_name = "PERCENT")]
    pub p0: Option<String>,
    /// The smallest rise that matters (default 3%; the latency judge's default is 10%).
    #[arg(long, value_name = "PERCENT")]
    pub delta: Option<String>,
    /// False-alarm rate, shared among the judges.
    #[arg(long, value_name = "PERCENT", default_value = "5%")]
    pub alpha: String,
    /// Chance of accepting a candidate worse by delta.
    #[arg(long, value_name = "PERCENT", default_value = "5%")]
    pub beta: String,
    /// Candidate observations before an acceptance counts.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub min_samples: u32,
    /// The stage's longest time: with `t_ms` in the file, observations after it are not
    /// judged (the live stage would have ended undecided).
    #[arg(long, value_name = "DURATION")]
    pub bake: Option<String>,
    #[arg(long)]
    pub json: bool,
}

impl JudgeArgs {
    /// Whether the judges come from the flags rather than a spec.
    pub fn names_judges(&self) -> bool {
        !self.judges.is_empty() || self.p0.is_some() || self.delta.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JudgeArg {
    ErrorRate,
    TwoSample,
    Latency,
}

/// Which steps: shared by `run`, `demo` and `validate`.
#[derive(Debug, Clone, Default, Args)]
pub struct StepChoice {
    /// Run only this step (repeatable).
    #[arg(long, value_name = "STEP", value_parser = step_name())]
    pub only: Vec<StepName>,
    /// Skip this step (repeatable).
    #[arg(long, value_name = "STEP", value_parser = step_name())]
    pub skip: Vec<StepName>,
    /// Run the steps of this named profile from the spec's `profiles` (with any
    /// `--only`/`--skip` added to it).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl StepChoice {
    /// What the spec crate plans a run for.
    pub fn selection(&self, drills: Vec<String>) -> gauntlet_spec::Selection {
        gauntlet_spec::Selection {
            profile: self.profile.clone(),
            only: self.only.clone(),
            skip: self.skip.clone(),
            drills,
            skip_drills: Vec::new(),
        }
    }
}

/// Options shared by `run` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct Execution {
    /// Where run directories go.
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".gauntlet/runs",
        env = "GAUNTLET_OUT"
    )]
    pub out: PathBuf,
    #[command(flatten)]
    pub steps: StepChoice,
    /// Under hard gating, run the remaining steps after a hard failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Exit 1 on CONDITIONAL, not 0.
    #[arg(long)]
    pub strict: bool,
    /// Print the final report JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seed for every random choice (traffic mix); recorded in the report.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A step name for `--only`/`--skip`, with the registry's names as its possible values.
fn step_name() -> impl clap::builder::TypedValueParser<Value = StepName> {
    clap::builder::PossibleValuesParser::new(
        StepName::ALL.map(|s| clap::builder::PossibleValue::new(s.as_str()).help(s.summary())),
    )
    .try_map(|name| name.parse::<StepName>())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The spec file, e.g. gauntlet.yaml.
    pub file: PathBuf,
    /// Run the gauntlet (or a smoke profile: `--profile NAME`, or the steps `--only`/`--skip`
    /// leave) N times,
    /// seeds SEED, SEED+1, …, and gate on the share of GO runs.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// With --repeat: the share of runs that must be GO (exit 1 below it; 3 when only
    /// inconclusive runs stand between).
    #[arg(
        long,
        value_name = "PERCENT",
        default_value = "100%",
        requires = "repeat"
    )]
    pub min_success: String,
    #[command(flatten)]
    pub execution: Execution,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which demo system: `shop` (a web shop and its quote providers) or `rag` (a
    /// retrieval-augmented assistant, its document store, cache and model providers).
    #[arg(value_enum, default_value_t = DemoSystem::Shop)]
    pub system: DemoSystem,
    /// Inject a defect into the candidate (repeatable). shop: errors=N%, latency=+Nms,
    /// no-failover, auth-bypass, no-rate-limit, corrupt-data, no-clock-leeway. rag: retrieval-off,
    /// top1-dropped, leaks-pii, follows-injection, no-fanout-limit, no-provider-failover,
    /// cost-surge, cache-off.
    #[arg(long, value_name = "KNOB")]
    pub defect: Vec<String>,
    /// Start a real Prometheus for the run (Debian's `prometheus` binary) and add PromQL
    /// gates over what it scrapes; without it, the gates read gauntlet's own measurements.
    #[arg(long)]
    pub prometheus: bool,
    /// Then keep the dashboard open on a loopback port (printed, with a token to sign in
    /// with) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    #[command(flatten)]
    pub execution: Execution,
}

/// The demo systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoSystem {
    Shop,
    Rag,
}

#[derive(Debug, Subcommand)]
pub enum DemoService {
    /// The demo service itself.
    App {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long = "service-version", default_value = "dev")]
        version: String,
        #[arg(long, default_value = "demo-key")]
        api_key: String,
        #[arg(long)]
        admin_token: Option<String>,
        #[arg(long, default_value_t = 100)]
        rate_limit: u32,
        #[arg(long)]
        primary: Option<String>,
        #[arg(long)]
        secondary: Option<String>,
        /// A defect knob, or `none`.
        #[arg(long)]
        defect: Vec<String>,
        #[arg(long, value_name = "VAR")]
        defect_env: Option<String>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// A quote provider the demo service depends on.
    Provider {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        name: String,
    },
    /// The rag demo's answer service (retrieval, cache, model providers, guards).
    Rag {
        #[arg(long)]
        port: u16,
        #[arg(long = "service-version", default_value = "dev")]
        version: String,
        #[arg(long)]
        docs: String,
        #[arg(long)]
        cache: Option<String>,
        #[arg(long)]
        primary: String,
        #[arg(long)]
        secondary: Option<String>,
        /// The system prompt file.
        #[arg(long)]
        prompt: PathBuf,
        #[arg(long)]
        admin_token: Option<String>,
        #[arg(long, default_value_t = 8)]
        max_k: usize,
        /// A defect knob, or `none`.
        #[arg(long)]
        defect: Vec<String>,
        #[arg(long, value_name = "VAR")]
        defect_env: Option<String>,
    },
    /// The rag demo's document store, serving a corpus (JSON lines).
    Docs {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        corpus: PathBuf,
    },
    /// An OpenAI-compatible model provider for the rag demo (no weights, no network).
    Llm {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "demo-small")]
        model: String,
    },
    /// The rag demo's answer cache.
    Cache {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Tokens for `gauntlet serve`, in the tokens file its config names.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// A new token with a role (viewer, operator, approver, admin), optionally for some
    /// services only; printed once on stdout, stored only as a hash.
    Create {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        role: String,
        /// Limit it to this service (repeatable); all services without.
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
        /// Who or what holds it, for the listing.
        #[arg(long)]
        label: Option<String>,
    },
    /// The tokens: id, role, services, created, revoked.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Refused from its next request on.
    Revoke {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Checks every link of the hash chain: exit 0 with the count of lines, 1 naming the
    /// first line edited, deleted, inserted or moved.
    Verify { file: PathBuf },
}

// What `gauntlet proxy` was asked (its help is the `Proxy` command's).
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Where clients connect, e.g. 127.0.0.1:8000 (with --upstream; optional with
    /// --toxiproxy, whose clients create proxies).
    #[arg(long, required_unless_present = "toxiproxy", requires = "upstream")]
    pub listen: Option<std::net::SocketAddr>,
    /// Where the proxy forwards, e.g. 127.0.0.1:9000.
    #[arg(long, required_unless_present = "toxiproxy", requires = "listen")]
    pub upstream: Option<String>,
    /// Answer Toxiproxy's HTTP API on this loopback address (no token; see above).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8474")]
    pub toxiproxy: Option<std::net::SocketAddr>,
    /// Where gauntlet's control API listens [default: 127.0.0.1:8474; with --toxiproxy, a
    /// free loopback port].
    #[arg(long)]
    pub control: Option<std::net::SocketAddr>,
    /// Name of the proxy in the control API.
    #[arg(long, default_value = "proxy")]
    pub name: String,
    /// `http` adds request faults (http_abort, http_delay); `tcp` passes bytes only.
    #[arg(long, value_enum, default_value_t = ProxyProtocol::Http)]
    pub protocol: ProxyProtocol,
    /// Seed for which connections and requests a partial fault touches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How long a fault added without a duration stays in (`0s`: until removed) [default:
    /// 10m for the control API's faults; Toxiproxy's toxics stay until removed].
    #[arg(long)]
    pub fault_ttl: Option<String>,
    /// Let the control API listen on an address other hosts can reach (it can break the
    /// system behind the proxy: keep it on loopback unless you must).
    #[arg(long)]
    pub allow_remote_control: bool,
}
