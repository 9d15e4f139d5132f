//! `gauntlet demo`: the demo project (the spec shipped as `examples/demo.yaml`, its protected
//! prompt, and the Cargo.lock the demo system is built from) written to `.gauntlet/demo/`,
//! locked and signed as a release manager would with `gauntlet lock`, then run like any spec.
//! The spec starts the demo system itself (`{gauntlet} demo-service …`); defects reach the
//! candidate through an environment variable, so the signed spec is the same with or without.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::CliError;
use crate::cli::{DemoArgs, DemoSystem, Global};

/// Where the demo project is written, relative to the working directory.
pub const PROJECT_DIR: &str = ".gauntlet/demo";
/// The demo's release keyring, inside the project (unless `--keyring` names another): the
/// demo never adds a key to the user's own keyring.
pub const RELEASE_KEYRING: &str = "keys/release";
/// The variable the demo candidate reads its defects from (see `--defect-env` in the spec).
pub const DEFECTS_ENV: &str = "GAUNTLET_DEMO_DEFECTS";

const FILES: &[(&str, &str)] = &[
    ("gauntlet.yaml", include_str!("../../../examples/demo.yaml")),
    (
        "prompts/support-reply.txt",
        include_str!("../../../examples/prompts/support-reply.txt"),
    ),
    (
        "alerts/demo.rules.yml",
        include_str!("../../../examples/alerts/demo.rules.yml"),
    ),
    (
        "dashboards/demo.json",
        include_str!("../../../examples/dashboards/demo.json"),
    ),
    (
        "slos/shop.openslo.yaml",
        include_str!("../../../examples/slos/shop.openslo.yaml"),
    ),
    ("Cargo.lock", include_str!("../../../Cargo.lock")),
    // The checklist's attested items, pre-signed with the owner roles' demo keys.
    (
        "attestations/threat-model-reviewed.json",
        include_str!("../../../examples/attestations/threat-model-reviewed.json"),
    ),
    (
        "attestations/threat-model-reviewed.json.minisig",
        include_str!("../../../examples/attestations/threat-model-reviewed.json.minisig"),
    ),
    (
        "attestations/on-call-runbook.json",
        include_str!("../../../examples/attestations/on-call-runbook.json"),
    ),
    (
        "attestations/on-call-runbook.json.minisig",
        include_str!("../../../examples/attestations/on-call-runbook.json.minisig"),
    ),
    // Each role's demo keyring, to sign off or re-sign as that role
    // (`gauntlet --keyring .gauntlet/demo/keys/security signoff latest --role security`).
    (
        "keys/sre/keyring.json",
        include_str!("../../../examples/keys/sre/keyring.json"),
    ),
    (
        "keys/sre/keyring.json.minisig",
        include_str!("../../../examples/keys/sre/keyring.json.minisig"),
    ),
    (
        "keys/sre/root.pub",
        include_str!("../../../examples/keys/sre/root.pub"),
    ),
    (
        "keys/sre/root.key",
        include_str!("../../../examples/keys/sre/root.key"),
    ),
    (
        "keys/sre/487C12BD55CBE388.pub",
        include_str!("../../../examples/keys/sre/487C12BD55CBE388.pub"),
    ),
    (
        "keys/sre/487C12BD55CBE388.key",
        include_str!("../../../examples/keys/sre/487C12BD55CBE388.key"),
    ),
    (
        "keys/security/keyring.json",
        include_str!("../../../examples/keys/security/keyring.json"),
    ),
    (
        "keys/security/keyring.json.minisig",
        include_str!("../../../examples/keys/security/keyring.json.minisig"),
    ),
    (
        "keys/security/root.pub",
        include_str!("../../../examples/keys/security/root.pub"),
    ),
    (
        "keys/security/root.key",
        include_str!("../../../examples/keys/security/root.key"),
    ),
    (
        "keys/security/A40541CF3244D6CD.pub",
        include_str!("../../../examples/keys/security/A40541CF3244D6CD.pub"),
    ),
    (
        "keys/security/A40541CF3244D6CD.key",
        include_str!("../../../examples/keys/security/A40541CF3244D6CD.key"),
    ),
    (
        "keys/product/keyring.json",
        include_str!("../../../examples/keys/product/keyring.json"),
    ),
    (
        "keys/product/keyring.json.minisig",
        include_str!("../../../examples/keys/product/keyring.json.minisig"),
    ),
    (
        "keys/product/root.pub",
        include_str!("../../../examples/keys/product/root.pub"),
    ),
    (
        "keys/product/root.key",
        include_str!("../../../examples/keys/product/root.key"),
    ),
    (
        "keys/product/652A2E3C28C8B181.pub",
        include_str!("../../../examples/keys/product/652A2E3C28C8B181.pub"),
    ),
    (
        "keys/product/652A2E3C28C8B181.key",
        include_str!("../../../examples/keys/product/652A2E3C28C8B181.key"),
    ),
];

/// Where `gauntlet demo rag` writes its project.
pub const RAG_PROJECT_DIR: &str = ".gauntlet/demo-rag";

/// The rag demo's project: its spec, the corpus, the golden set and the system prompt (the
/// last three protected by the lock).
const RAG_FILES: &[(&str, &str)] = &[
    (
        "gauntlet.yaml",
        include_str!("../../../examples/rag/gauntlet.yaml"),
    ),
    (
        "corpus.jsonl",
        include_str!("../../../examples/rag/corpus.jsonl"),
    ),
    (
        "golden.jsonl",
        include_str!("../../../examples/rag/golden.jsonl"),
    ),
    (
        "prompts/rag-system.txt",
        include_str!("../../../examples/rag/prompts/rag-system.txt"),
    ),
    (
        "probes/injection.jsonl",
        include_str!("../../../examples/rag/probes/injection.jsonl"),
    ),
    (
        "alerts/rag.rules.yml",
        include_str!("../../../examples/rag/alerts/rag.rules.yml"),
    ),
    (
        "probes/pii.jsonl",
        include_str!("../../../examples/rag/probes/pii.jsonl"),
    ),
    ("Cargo.lock", include_str!("../../../Cargo.lock")),
];

/// The demo spec's text.
#[cfg(test)]
pub fn spec_text() -> &'static str {
    FILES[0].1
}

/// Checks the knobs against the system's and joins them for the candidate's environment.
pub fn defects(system: DemoSystem, knobs: &[String]) -> Result<String, String> {
    for knob in knobs {
        match system {
            DemoSystem::Shop => knob
                .parse::<demo_service::Defect>()
                .map(drop)
                .map_err(|e| e.to_string()),
            DemoSystem::Rag => knob
                .parse::<demo_service::rag::knobs::RagDefect>()
                .map(drop)
                .map_err(|e| e.to_string()),
        }?;
    }
    Ok(knobs.join(","))
}

/// What `--prometheus` adds to the demo spec: a Prometheus started for the run, and PromQL
/// gates over what it scrapes (they extend `gates.checks`, the spec's last list).
const PROMETHEUS_GATES: &str = r#"    - name: requests under 100ms (Prometheus)
      query: {promql: 'sum(rate(demo_http_request_duration_seconds_bucket{job="candidate", le="0.1"}[30s])) / sum(rate(demo_http_request_duration_seconds_count{job="candidate"}[30s]))'}
      pass: ">= 90%"
      critical: true
    - name: p99 latency (Prometheus)
      query: {promql: 'histogram_quantile(0.99, sum by (le) (rate(demo_http_request_duration_seconds_bucket{job="candidate"}[30s])))'}
      pass: "< 300ms"
    - name: 5xx ratio (Prometheus)
      query: {promql: '(sum(rate(demo_http_requests_total{job="candidate", status=~"5.."}[{run_seconds}s])) or vector(0)) / sum(rate(demo_http_requests_total{job="candidate"}[{run_seconds}s]))'}
      pass: "< 1%"
      weight: 2

# Added by `gauntlet demo --prometheus`: a real Prometheus for the run, scraping every system
# (job = system name) every second on its own loopback port.
prometheus:
  start: true
  scrape_interval: 1s
"#;

/// With Debian's `prometheus-alertmanager` as well: the run's Prometheus sends its alerts to
/// an Alertmanager that notifies gauntlet, and the primary-outage drill waits for its page.
const ALERTMANAGER: &str = "  alertmanager: {start: true}
";
const DRILL_ALERT_OFF: &str = "        # alerts: [{name: DemoPrimaryProviderFailing, within: 20s}]
";
const DRILL_ALERT_ON: &str = "        alerts: [{name: DemoPrimaryProviderFailing, within: 20s}]
";
const REHEARSAL_ALERT_OFF: &str = "    # alerts: [{name: DemoCandidateErrors, within: 20s}]
";
const REHEARSAL_ALERT_ON: &str = "    alerts: [{name: DemoCandidateErrors, within: 20s}]
";

/// Whether `prometheus-alertmanager` is on the PATH.
pub fn alertmanager_installed() -> bool {
    gauntlet_engine::prom::which("prometheus-alertmanager")
}

/// Whether the `prometheus` binary is on the PATH.
pub fn prometheus_installed() -> bool {
    gauntlet_engine::prom::which("prometheus")
}

/// The demo spec, with or without its Prometheus (and with or without an Alertmanager).
/// The OpenSLO file the shop's SLOs also come from, with a Prometheus to load its rules.
const OPENSLO_OFF: &str = "  # openslo: [slos/shop.openslo.yaml]\n";
const OPENSLO_ON: &str = "  openslo: [slos/shop.openslo.yaml]\n";

pub fn spec_with(prometheus: bool, alertmanager: bool) -> String {
    let base = FILES[0].1;
    if !prometheus {
        return base.to_string();
    }
    let mut text = format!("{}\n{PROMETHEUS_GATES}", base.trim_end_matches('\n'));
    text = text.replacen(OPENSLO_OFF, OPENSLO_ON, 1);
    if alertmanager {
        text = text.replacen(DRILL_ALERT_OFF, DRILL_ALERT_ON, 1);
        text = text.replacen(REHEARSAL_ALERT_OFF, REHEARSAL_ALERT_ON, 1);
        text.push_str(ALERTMANAGER);
    }
    text
}

/// Writes the shop demo's project into `dir` (always afresh, so the demo matches this
/// build) and returns the spec's path.
pub fn write_project(dir: &Path, prometheus: bool, alertmanager: bool) -> std::io::Result<PathBuf> {
    write_files(dir, FILES, &spec_with(prometheus, alertmanager))
}

/// Writes a project's files (the first is the spec, written as `spec`); returns the spec's
/// path.
fn write_files(dir: &Path, files: &[(&str, &str)], spec: &str) -> std::io::Result<PathBuf> {
    for (name, text) in files {
        let text = if *name == files[0].0 { spec } else { text };
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).ok().as_deref() != Some(text.as_bytes()) {
            gauntlet_report::write_atomic(&path, text.as_bytes())?;
        }
        // Secret keys (even the demo's) are for their owner only, as `keys generate` writes them.
        if name.ends_with(".key") {
            use std::os::unix::fs::PermissionsExt;
            let private = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&path, private)?;
            if let Some(parent) = path.parent() {
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
            }
        }
    }
    Ok(dir.join(files[0].0))
}

/// `gauntlet demo [rag]`: writes the project, locks and signs it with the demo's keyring,
/// runs it, and renders the certificate a release manager would file.
pub fn command(args: DemoArgs, global: Global) -> Result<i32, CliError> {
    let knobs = defects(args.system, &args.defect).map_err(CliError::Usage)?;
    // SAFETY: no other thread exists yet (the runtime starts in `execute`); the demo
    // candidate reads its defects from this variable, so the signed spec stays the same.
    unsafe { std::env::set_var(DEFECTS_ENV, &knobs) };
    let (dir, service, spec_path) = match args.system {
        DemoSystem::Shop => {
            let dir = Path::new(PROJECT_DIR);
            (dir, "demo-shop", shop_project(dir, &args, &global)?)
        }
        DemoSystem::Rag => {
            let alertmanager = monitoring(&args, &global)?;
            let dir = Path::new(RAG_PROJECT_DIR);
            let text = rag_spec_with(args.prometheus, alertmanager);
            let spec = write_files(dir, RAG_FILES, &text)
                .with_context(|| format!("cannot write the demo project to {}", dir.display()))?;
            (dir, "demo-rag", spec)
        }
    };
    run_project(&args, global, (dir, service, &spec_path), &knobs)
}

/// With `--prometheus`: whether Prometheus is here (else bad usage) and an Alertmanager too.
fn monitoring(args: &DemoArgs, global: &Global) -> Result<bool, CliError> {
    if args.prometheus && !prometheus_installed() {
        return Err(CliError::Usage(
            "`--prometheus` needs the `prometheus` binary: `sudo apt-get install prometheus` on Debian or Ubuntu (or run the demo without it: the gates then read gauntlet's own measurements)".into(),
        ));
    }
    let alertmanager = args.prometheus && alertmanager_installed();
    if args.prometheus && !alertmanager && !global.quiet {
        note!(
            "gauntlet demo: no `prometheus-alertmanager` here, so alerts are checked in the rule file but not delivered (`sudo apt-get install prometheus-alertmanager` adds the drill that waits for its page)"
        );
    }
    Ok(alertmanager)
}

/// The shop demo's project, with a Prometheus (and an Alertmanager) when asked and present.
fn shop_project(dir: &Path, args: &DemoArgs, global: &Global) -> Result<PathBuf, CliError> {
    let alertmanager = monitoring(args, global)?;
    Ok(write_project(dir, args.prometheus, alertmanager)
        .with_context(|| format!("cannot write the demo project to {}", dir.display()))?)
}

/// What `demo rag --prometheus` adds: a Prometheus for the run (and an Alertmanager, whose
/// page the provider-throttled drill then waits for).
const RAG_PROMETHEUS: &str = "
# Added by `gauntlet demo rag --prometheus`: a real Prometheus for the run, scraping every
# system (job = system name) every second, evaluating alerts/rag.rules.yml.
prometheus:
  start: true
  scrape_interval: 1s
";
const RAG_DRILL_ALERT_OFF: &str =
    "        # alerts: [{name: RagPrimaryProviderFailing, within: 20s}]
";
const RAG_DRILL_ALERT_ON: &str = "        alerts: [{name: RagPrimaryProviderFailing, within: 20s}]
";

/// The rag demo's spec, with or without its Prometheus (and Alertmanager).
pub fn rag_spec_with(prometheus: bool, alertmanager: bool) -> String {
    let mut text = RAG_FILES[0].1.to_string();
    if prometheus {
        text.push_str(RAG_PROMETHEUS);
        if alertmanager {
            text = text.replacen(RAG_DRILL_ALERT_OFF, RAG_DRILL_ALERT_ON, 1);
            text.push_str(ALERTMANAGER);
        }
    }
    text
}

/// The chaos drills a plan leaves out, with why.
fn plan_skipped_drills(plan: &gauntlet_spec::Plan) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            gauntlet_spec::StepPlan::Chaos(chaos) => Some(chaos.skipped.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Locks and signs the project as a release manager would, runs it, files its certificate,
/// and keeps the dashboard open when asked.
fn run_project(
    args: &DemoArgs,
    mut global: Global,
    (dir, service, spec_path): (&Path, &str, &Path),
    knobs: &str,
) -> Result<i32, CliError> {
    let keyring = release_keyring(dir, &mut global)?;
    let (lock, version, key, count) =
        crate::signing::lock_files(&keyring, Some(spec_path), &[], None, None)?;
    let text = crate::read_spec(spec_path)?;
    let mut selection = args.execution.steps.selection(Vec::new());
    // The shop's clock-skew drill needs libfaketime, which a machine with only the Rust
    // toolchain lacks: the drill is then reported as not run, and the demo still decides.
    if let Err(why) = gauntlet_engine::libfaketime() {
        selection.skip_drills.push(("clock-skew".into(), why));
    }
    let plan = crate::plan(spec_path, &text, &selection, args.execution.seed)?;
    if !global.quiet {
        for (drill, why) in plan_skipped_drills(&plan) {
            note!("gauntlet demo: drill `{drill}` not run: {why}");
        }
        note!(
            "gauntlet demo: project in {}; {count} protected files locked into {} (manifest {version}) and signed by key {key}",
            dir.display(),
            lock.display()
        );
        note!(
            "gauntlet demo: the candidate runs with defects: {}",
            if knobs.is_empty() { "none" } else { knobs }
        );
    }
    let ran = crate::execute(plan, spec_path, text, &args.execution, &global)?;
    if !global.quiet {
        certificate(&global, &ran.run_id);
        note!(
            "try the CI guard: edit a threshold in {}, then `gauntlet verify --spec {} --keyring {}` exits 1 naming it",
            spec_path.display(),
            spec_path.display(),
            keyring.display()
        );
    }
    if args.serve {
        dashboard(
            (dir, service),
            &keyring,
            &global,
            &args.execution.out,
            &ran.run_id,
        )?;
    }
    Ok(ran.code)
}

/// `--serve`: the dashboard over the demo's runs, on a free loopback port, with an approver
/// token printed once (approvers read and sign off), until Ctrl-C.
fn dashboard(
    (dir, service): (&Path, &str),
    keyring: &Path,
    global: &Global,
    runs: &Path,
    run_id: &str,
) -> Result<(), CliError> {
    // Quoted as JSON strings, which YAML reads as they are.
    let quoted = |p: &Path| {
        let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        serde_json::Value::String(absolute.display().to_string()).to_string()
    };
    let config = format!(
        "# Written by `gauntlet demo --serve`: the dashboard over the demo's runs.\nlisten: 127.0.0.1:0\nstore: {}\nruns: {}\nkeyring: {}\nservices:\n  {service}: {{spec: gauntlet.yaml}}\n",
        match &global.store {
            gauntlet_store::Location::Sqlite(path) => quoted(path),
            // The user's own database, in the user's own demo folder.
            gauntlet_store::Location::Postgres(url) =>
                serde_json::Value::String(url.clone()).to_string(),
        },
        quoted(runs),
        quoted(keyring),
    );
    let path = dir.join("server.yaml");
    gauntlet_report::write_atomic(&path, config.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let config = gauntlet_server::ServerConfig::load(&path, keyring.to_path_buf())
        .map_err(CliError::Spec)?;
    let (token, _) = gauntlet_server::tokens::create(
        &config.tokens,
        gauntlet_server::tokens::Role::Approver,
        Vec::new(),
        Some("gauntlet demo --serve".into()),
    )
    .map_err(|e| CliError::Internal(anyhow::anyhow!(e.to_string())))?;
    crate::serve::serve_until_stopped(config, |addr| {
        note!("gauntlet demo: dashboard on http://{addr}/ui/runs/{run_id} (Ctrl-C to stop)");
        note!("gauntlet demo: sign in with this approver token (shown once): {token}");
    })
}

/// The demo's own release keyring, unless one is named, with a signing key in it: a demo
/// never touches yours, and never signs with a CI key from the environment that its keyring
/// does not hold.
fn release_keyring(dir: &Path, global: &mut Global) -> Result<PathBuf, CliError> {
    if global.keyring.is_none() && std::env::var_os(gauntlet_trust::keys::KEY_ENV).is_some() {
        if !global.quiet {
            note!(
                "gauntlet demo: ignoring {} (the demo signs with its own keyring; name yours with --keyring to sign with it)",
                gauntlet_trust::keys::KEY_ENV
            );
        }
        // SAFETY: still single-threaded (the runtime starts in `execute`).
        unsafe { std::env::remove_var(gauntlet_trust::keys::KEY_ENV) };
    }
    let keyring = global
        .keyring
        .get_or_insert_with(|| dir.join(RELEASE_KEYRING))
        .clone();
    let mut ring = gauntlet_trust::Keyring::open(&keyring)?;
    let (key, made) = ring.ensure_active(None)?;
    if made && !global.quiet {
        note!(
            "gauntlet demo: created signing key {} in {} (for real releases: `gauntlet keys generate --encrypt`)",
            key.id,
            keyring.display()
        );
    }
    Ok(keyring)
}

/// The certificate a release manager would file, as `gauntlet certificate` renders it.
/// Failing to render it does not change what the run decided.
fn certificate(global: &Global, run_id: &str) {
    let rendered = crate::open_store(global).and_then(|store| {
        crate::review::write_certificate(&store, global, run_id, &Default::default())
    });
    match rendered {
        Ok((md, html)) => note!("certificate: {} (also {})", md.display(), html.display()),
        Err(e) => note!("certificate: not rendered: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_knobs_are_refused() {
        assert!(
            defects(DemoSystem::Shop, &["flaky".into()])
                .unwrap_err()
                .contains("unknown defect")
        );
        assert_eq!(
            defects(
                DemoSystem::Shop,
                &["auth-bypass".into(), "errors=5%".into()]
            )
            .unwrap(),
            "auth-bypass,errors=5%"
        );
    }

    #[test]
    fn the_alertmanager_variant_waits_for_the_outage_page() {
        let text = spec_with(true, true);
        let spec = gauntlet_spec::load_str("gauntlet.yaml", &text).unwrap();
        let prometheus = spec.prometheus.as_ref().unwrap();
        assert!(prometheus.alertmanager.as_ref().is_some_and(|a| a.start));
        let drills = &spec.steps.chaos.as_ref().unwrap().drills.value;
        let outage = drills.iter().find(|d| d.name == "primary-outage").unwrap();
        assert_eq!(outage.alerts[0].name, "DemoPrimaryProviderFailing");
        assert!(drills.iter().filter(|d| !d.alerts.is_empty()).count() == 1);
        let rehearsal = spec.steps.rollback_rehearsal.as_ref().unwrap();
        assert_eq!(rehearsal.alerts[0].value.name, "DemoCandidateErrors");
        // Without it, the drill's expectation stays a comment.
        let plain = gauntlet_spec::load_str("gauntlet.yaml", &spec_with(true, false)).unwrap();
        assert!(
            plain
                .steps
                .chaos
                .unwrap()
                .drills
                .value
                .iter()
                .all(|d| d.alerts.is_empty())
        );
    }

    #[test]
    fn the_shipped_rules_define_what_the_demo_requires() {
        let spec = gauntlet_spec::load_str("gauntlet.yaml", spec_text()).unwrap();
        let alerts = spec.steps.observability.unwrap().alerts.unwrap();
        let file = FILES
            .iter()
            .find(|(name, _)| *name == alerts.rules)
            .unwrap();
        let rules = gauntlet_metrics::rules::parse_rules(file.1).unwrap();
        for name in &alerts.required {
            assert!(rules.alert(name).is_some(), "{name}");
        }
    }

    #[test]
    fn the_prometheus_variant_is_valid_and_adds_promql_gates() {
        let text = spec_with(true, false);
        let spec = gauntlet_spec::load_str("gauntlet.yaml", &text).unwrap();
        assert!(spec.prometheus.as_ref().is_some_and(|p| p.start));
        let gates = &spec.gates.as_ref().unwrap().checks.value;
        let promql = gates
            .iter()
            .filter(|g| matches!(g.query, gauntlet_spec::GateQuery::Promql(_)))
            .count();
        assert_eq!(promql, 3);
        assert!(spec_with(false, false).len() < text.len());
    }

    #[test]
    fn the_shipped_demo_spec_is_valid_and_reads_its_defects_from_the_environment() {
        let spec = gauntlet_spec::load_str("gauntlet.yaml", spec_text()).unwrap();
        assert!(spec.steps.preflight.is_some() && spec.steps.rotation.is_some());
        assert!(spec_text().contains(DEFECTS_ENV));
    }
}
