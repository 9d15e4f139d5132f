//! `gauntlet`: the command line. Thin: it parses arguments, loads the spec, hands over to
//! the engine, and turns typed errors into messages and exit codes.

#[macro_use]
mod output;

mod attest;
mod cli;
mod demo;
mod keys;
mod offline;
mod progress;
mod proxy;
mod review;
mod serve;
mod signing;
mod stress;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use gauntlet_engine::{Observer, RunOptions, Silent};
use gauntlet_report::exit;
use gauntlet_spec::SpecErrors;
use gauntlet_store::Store;

use cli::{Cli, Command, DemoService, Execution, Global};

/// How a command fails: bad input (exit 2), a verification that says no (exit 1), or
/// gauntlet itself unable to do its job (exit 4), never to be mistaken for a NO-GO.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("invalid spec")]
    Spec(SpecErrors),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Spec(_) | CliError::Usage(_) => exit::INVALID_INPUT,
            CliError::Refused(_) => exit::NO_GO,
            CliError::Internal(_) => exit::INTERNAL,
        }
    }

    /// A store error: a run that is not there is the user's input; anything else is ours.
    pub(crate) fn from_store(e: gauntlet_store::StoreError) -> CliError {
        use gauntlet_store::StoreError;
        match e {
            StoreError::NoSuchRun(_) | StoreError::Ambiguous(_) => CliError::Usage(e.to_string()),
            other => CliError::Internal(other.into()),
        }
    }

    fn print(&self) {
        match self {
            CliError::Spec(errors) => {
                let theme = if progress::colour_enabled() {
                    miette::GraphicalTheme::unicode()
                } else {
                    miette::GraphicalTheme::unicode_nocolor()
                };
                let handler = miette::GraphicalReportHandler::new_themed(theme);
                for diagnostic in &errors.0 {
                    let mut out = String::new();
                    if handler.render_report(&mut out, diagnostic).is_err() {
                        out = diagnostic.to_string();
                    }
                    note!("{out}");
                }
                note!(
                    "{} problem(s) in the spec; nothing was run.",
                    errors.0.len()
                );
            }
            CliError::Usage(message) => note!("error: {message}"),
            CliError::Refused(message) => note!("REFUSED: {message}"),
            CliError::Internal(e) => note!("internal error: {e:#}"),
        }
    }
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = Cli::parse();
    let prints_result = cli.command.prints_result();
    let dispatched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli)));
    let mut code = match dispatched {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            e.print();
            e.exit_code()
        }
        // The hook said what happened; a bug is an internal error, never exit 101.
        Err(_) => exit::INTERNAL,
    };
    if let Some(kind) = output::stdout_lost() {
        // Lost output changes no decision; but a command whose output is its result did not
        // deliver it, and must not say it did.
        if prints_result && code == exit::GO {
            note!("internal error: standard output could not be written ({kind})");
            code = exit::INTERNAL;
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(exit::INTERNAL as u8))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(cli: Cli) -> Result<i32, CliError> {
    let global = cli.global;
    match cli.command {
        Command::Validate { file, steps } => validate(&file, &steps),
        Command::Schema => schema(),
        Command::Run(args) => run_command(&args, &global),
        Command::Chaos {
            import: Some(experiment),
            ..
        } => chaos_import(&experiment),
        Command::Chaos {
            file,
            drill,
            execution,
            ..
        } => chaos_command(&file.unwrap_or_default(), drill, &execution, &global),
        Command::Stress {
            cpu,
            memory,
            io,
            io_size,
            io_rate,
            report,
            seconds,
            ready,
        } => stress::run(stress::Pressure {
            cpu,
            memory,
            io: io.map(|file| stress::Io {
                file,
                size: io_size,
                rate: io_rate,
                report,
            }),
            seconds,
            ready,
        }),
        Command::Demo(args) => demo::command(args, global),
        Command::Lock {
            files,
            spec,
            lock,
            bump,
        } => signing::lock_command(
            &keys::keyring_dir(&global)?,
            spec.as_deref(),
            &files,
            lock.as_deref(),
            bump,
        ),
        Command::Verify {
            spec,
            lock,
            trust,
            semantic,
            json,
        } => signing::verify_command(
            &global,
            spec.as_deref(),
            lock.as_deref(),
            &trust,
            semantic,
            json,
        ),
        Command::Keys(command) => keys::keys_command(&global, command),
        Command::Serve { config, log_format } => serve::serve_command(&global, &config, log_format),
        Command::Token(command) => serve::token_command(&global, command),
        Command::Audit(command) => serve::audit_command(command),
        Command::Attest(command) => attest::attest_command(&global, command),
        Command::Sbom {
            lockfiles,
            name,
            version,
            spec,
            out,
        } => signing::sbom_command(
            &lockfiles,
            name.as_deref(),
            version.as_deref(),
            spec.as_deref(),
            out.as_deref(),
        ),
        Command::History { limit, json } => history(&global, limit, json),
        Command::Show { run, json } => show(&global, &run, json),
        Command::Drift { older, newer, json } => drift(&global, &older, &newer, json),
        Command::Signoff {
            run,
            role,
            by,
            verify,
            trust,
        } => {
            let store = open_store(&global)?;
            signing::signoff_command(&global, &store, &run, role.as_deref(), by, verify, &trust)
        }
        Command::Readiness { run, json } => review::readiness_command(&global, &run, json),
        Command::Certificate { run, trust } => review::certificate_command(&global, &run, &trust),
        Command::Recover { run } => recover(&global, run.as_deref()),
        Command::Confirm { run, step, by } => confirm(&global, &run, step.as_deref(), by),
        Command::Ack { run, drill, by } => ack(&global, &run, &drill, by),
        Command::Gameday { run, out } => gameday(&global, &run, out.as_deref()),
        Command::SloRules { files } => slo_rules(&files),
        Command::Judge(args) => offline::judge(&args),
        Command::Load {
            url,
            rate,
            duration,
            connections,
            http2,
            json,
        } => offline::load(&url, rate.as_deref(), &duration, connections, http2, json),
        Command::Proxy(args) => proxy::proxy(args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gauntlet", &mut script);
            output::stdout_bytes(&script);
            Ok(exit::GO)
        }
        Command::DemoService(service) => demo_service(service),
    }
}

/// `gauntlet schema`: the spec's JSON Schema.
fn schema() -> Result<i32, CliError> {
    let schema = gauntlet_trust::json_document(&gauntlet_spec::json_schema(), "schema")?;
    output::stdout_bytes(&schema);
    Ok(exit::GO)
}

/// `gauntlet run`: the spec's steps once, or `--repeat` times from one plan.
fn run_command(args: &cli::RunArgs, global: &Global) -> Result<i32, CliError> {
    let text = read_spec(&args.file)?;
    let selection = args.execution.steps.selection(Vec::new());
    let plan = plan(&args.file, &text, &selection, args.execution.seed)?;
    if args.repeat == 1 {
        return execute(plan, &args.file, text, &args.execution, global).map(|ran| ran.code);
    }
    repeat(plan, args, text, global)
}

/// `gauntlet chaos`: the chaos step alone, or only the drills named.
fn chaos_command(
    file: &Path,
    drills: Vec<String>,
    execution: &cli::Execution,
    global: &Global,
) -> Result<i32, CliError> {
    let text = read_spec(file)?;
    let selection = gauntlet_spec::Selection {
        only: vec![gauntlet_spec::StepName::Chaos],
        drills,
        ..Default::default()
    };
    let plan = plan(file, &text, &selection, execution.seed)?;
    execute(plan, file, text, execution, global).map(|ran| ran.code)
}

/// `gauntlet chaos --import EXPERIMENT`: the drills a Chaos Toolkit experiment becomes on
/// stdout, what mapped and what did not on stderr.
fn chaos_import(experiment: &Path) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(experiment)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", experiment.display())))?;
    let yaml = experiment
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml");
    let imported = gauntlet_spec::chaostoolkit::import(&text, yaml).map_err(|e| {
        CliError::Usage(format!(
            "{}: {e}\n  (a Chaos Toolkit experiment: https://chaostoolkit.org/reference/api/experiment/)",
            experiment.display()
        ))
    })?;
    say!(
        "# steps.chaos from the Chaos Toolkit experiment {} (gauntlet chaos --import)",
        experiment.display()
    );
    for line in imported.yaml.lines() {
        say!("{line}");
    }
    note!("mapped:");
    for line in &imported.mapped {
        note!("  ✓ {line}");
    }
    if !imported.not_mapped.is_empty() {
        note!("not mapped:");
        for line in &imported.not_mapped {
            note!("  ✗ {line}");
        }
    }
    Ok(exit::GO)
}

pub(crate) fn read_spec(path: &Path) -> Result<String, CliError> {
    gauntlet_spec::read_file(path).map_err(CliError::Spec)
}

/// The plan of a run of the spec at `file` (read as `text`): what the selection runs,
/// checked and resolved.
pub(crate) fn plan(
    file: &Path,
    text: &str,
    selection: &gauntlet_spec::Selection,
    seed: u64,
) -> Result<gauntlet_spec::Plan, CliError> {
    gauntlet_spec::plan_str(&file.display().to_string(), text, selection, seed).map_err(|e| match e
    {
        gauntlet_spec::PlanError::Spec(e) => CliError::Spec(e),
        gauntlet_spec::PlanError::Selection(why) => CliError::Usage(why),
    })
}

fn validate(file: &Path, steps: &cli::StepChoice) -> Result<i32, CliError> {
    let text = read_spec(file)?;
    let plan = plan(file, &text, &steps.selection(Vec::new()), 1)?;
    let runs: Vec<&str> = plan.steps.iter().map(|s| s.step().as_str()).collect();
    say!(
        "{}: valid; service {} {}; steps: {}",
        file.display(),
        plan.service.name,
        plan.service.version,
        if runs.is_empty() {
            "none".to_string()
        } else {
            runs.join(", ")
        }
    );
    for (step, why) in &plan.skipped {
        say!("  {step}: {why}, so not checked");
    }
    Ok(exit::GO)
}

/// A finished (or aborted) run: its exit code and its id in the store.
struct Ran {
    code: i32,
    run_id: String,
}

fn execute(
    plan: gauntlet_spec::Plan,
    spec_path: &Path,
    spec_text: String,
    execution: &Execution,
    global: &Global,
) -> Result<Ran, CliError> {
    let options = RunOptions {
        spec_path: spec_path.to_path_buf(),
        spec_text,
        out_dir: execution.out.clone(),
        store: global.store.clone(),
        keep_going: execution.keep_going,
        strict: execution.strict,
        request_timeout: Duration::from_secs(5),
        keyring: keys::keyring_dir(global)?,
        run_id: None,
        cancel: None,
        given_env: Default::default(),
        started_by: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok(),
        // On a store shared with other machines, a CLI run is known alive by its lease.
        lease: Some(gauntlet_engine::LeaseHolder::this_process(
            "cli",
            gauntlet_engine::CLI_LEASE,
        )),
        shared_files: None,
    };
    let observer: Arc<dyn Observer> = if global.quiet {
        Arc::new(Silent)
    } else {
        Arc::new(progress::Progress::for_stderr())
    };
    let outcome = runtime()?
        .block_on(gauntlet_engine::run(plan, options, observer))
        .map_err(anyhow::Error::from)?;
    let report = &outcome.report;
    if execution.json {
        say!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    }
    print_outcome(&outcome, execution.json);
    Ok(Ran {
        code: report.exit_code,
        run_id: report.run_id.clone(),
    })
}

/// The outcome block: the result of `run` on stdout (with `--quiet` too), or on stderr when
/// stdout carries the JSON report.
fn print_outcome(outcome: &gauntlet_engine::RunOutcome, json: bool) {
    let report = &outcome.report;
    macro_rules! line {
        ($($arg:tt)*) => {
            if json { note!($($arg)*) } else { say!($($arg)*) }
        };
    }
    let headline = progress::paint(report.decision.as_str(), report.decision, !json);
    line!(
        "\n{headline}  {}",
        report
            .summary
            .trim_start_matches(report.decision.as_str())
            .trim_start_matches(": ")
    );
    for condition in &report.conditions {
        line!(
            "  condition: {} — {} (owner: {})",
            condition.check,
            condition.reason,
            condition
                .owner
                .as_deref()
                .or(condition.owner_role.as_deref())
                .unwrap_or("none named")
        );
    }
    if let Some(readiness) = &report.readiness {
        let categories: Vec<String> = readiness
            .categories
            .iter()
            .map(|c| format!("{} {:.0}%", c.name, c.score * 100.0))
            .collect();
        line!(
            "readiness: {:.1}% (minimum {}): {}",
            readiness.score * 100.0,
            readiness.minimum,
            categories.join(", ")
        );
    }
    line!(
        "reports: {}/report.md (also report.json, junit.xml)",
        outcome.run_dir.display()
    );
    if let Some(trust) = &report.trust {
        if let Some(fp) = &trust.green_fingerprint {
            line!("green fingerprint: {fp}");
        }
        match (&trust.attestation, &trust.signing_key) {
            (Some(att), Some(key)) => line!(
                "attestation: {}/{att} (signed by key {key}; check: gauntlet attest verify {}/{att} --key {})",
                outcome.run_dir.display(),
                outcome.run_dir.display(),
                trust.public_key.as_deref().unwrap_or("KEY.pub")
            ),
            _ => line!(
                "attestation: none ({})",
                trust.note.as_deref().unwrap_or("not signed")
            ),
        }
    }
    line!("run id:  {}", report.run_id);
}

/// `run --repeat N --min-success P`: the same spec N times with successive seeds; the share
/// of GO runs decides.
fn repeat(
    plan: gauntlet_spec::Plan,
    args: &cli::RunArgs,
    text: String,
    global: &Global,
) -> Result<i32, CliError> {
    let minimum: gauntlet_spec::units::Percent =
        args.min_success
            .parse()
            .map_err(|e: gauntlet_spec::units::UnitError| {
                CliError::Usage(format!("--min-success: {}", e.0))
            })?;
    let name = args.file.display().to_string();
    let mut outcomes = Vec::new();
    for i in 0..args.repeat {
        let mut execution = args.execution.clone();
        execution.seed = args.execution.seed.wrapping_add(u64::from(i));
        let this = plan.with_seed(execution.seed);
        let ran = execute(this, &args.file, text.clone(), &execution, global)?;
        let latest = open_store(global)?
            .find_run(&ran.run_id)
            .map_err(anyhow::Error::from)?;
        let decision = latest
            .decision
            .clone()
            .unwrap_or_else(|| latest.status.clone());
        note!(
            "repeat {}/{}: run {} (seed {}) {decision}",
            i + 1,
            args.repeat,
            latest.id,
            execution.seed
        );
        outcomes.push((latest.id, execution.seed, decision));
    }
    let n = outcomes.len() as f64;
    let share = |d: &[&str]| {
        outcomes
            .iter()
            .filter(|o| d.contains(&o.2.as_str()))
            .count() as f64
            / n
    };
    let go = share(&["GO"]);
    let at_best = share(&["GO", "INCONCLUSIVE"]);
    say!(
        "{} runs of {}{}: {} GO ({:.1}%), min-success {}",
        outcomes.len(),
        name,
        args.execution
            .steps
            .profile
            .as_ref()
            .map(|p| format!(" (profile {p})"))
            .unwrap_or_default(),
        outcomes.iter().filter(|o| o.2 == "GO").count(),
        go * 100.0,
        minimum
    );
    for (id, seed, decision) in &outcomes {
        say!("  {id}  seed {seed}  {decision}");
    }
    let target = minimum.ratio() - 1e-9;
    let code = if go >= target {
        exit::GO
    } else if at_best >= target {
        exit::INCONCLUSIVE
    } else {
        exit::NO_GO
    };
    say!(
        "{}",
        match code {
            exit::GO => "repeat: PASS",
            exit::INCONCLUSIVE =>
                "repeat: INCONCLUSIVE (inconclusive runs stand between the GO share and the minimum)",
            _ => "repeat: FAIL",
        }
    );
    Ok(code)
}

fn open_store(global: &Global) -> Result<Store, CliError> {
    let store = Store::connect(&global.store).map_err(anyhow::Error::from)?;
    let reaped = gauntlet_engine::reap_abandoned(&store).map_err(anyhow::Error::from)?;
    for (id, _) in reaped {
        note!(
            "note: run {id} ended without finishing (killed?); marked aborted. `gauntlet recover` undoes anything it left running."
        );
    }
    Ok(store)
}

fn history(global: &Global, limit: usize, json: bool) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let runs = store.list_runs(limit).map_err(anyhow::Error::from)?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return Ok(exit::GO);
    }
    if runs.is_empty() {
        say!("no runs yet in {} — try `gauntlet demo`", global.store);
        return Ok(exit::GO);
    }
    say!(
        "{:<22} {:<25} {:<24} {:<13} {:<9}",
        "RUN",
        "STARTED",
        "SERVICE",
        "DECISION",
        "STATUS"
    );
    for run in runs {
        say!(
            "{:<22} {:<25} {:<24} {:<13} {:<9}",
            run.id,
            run.started_at,
            format!("{} {}", run.service, run.version),
            run.decision.as_deref().unwrap_or("—"),
            run.status
        );
    }
    Ok(exit::GO)
}

fn drift(global: &Global, older: &str, newer: &str, json: bool) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let find = |run: &str| store.find_run(run).map_err(CliError::from_store);
    let (a, b) = (find(older)?, find(newer)?);
    let changes =
        gauntlet_review::drift::between(Path::new(&a.run_dir), Path::new(&b.run_dir), None)?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "older": a.id, "newer": b.id, "changes": changes
            }))
            .unwrap_or_default()
        );
    } else if changes.is_empty() {
        say!("{} → {}: nothing changed", a.id, b.id);
    } else {
        say!("{} → {}: {} change(s)", a.id, b.id, changes.len());
        for change in &changes {
            say!("  {change}");
        }
    }
    Ok(if changes.is_empty() {
        exit::GO
    } else {
        exit::NO_GO
    })
}

fn show(global: &Global, run: &str, json: bool) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let report = store.report(&summary.id).map_err(anyhow::Error::from)?;
    match (report, json) {
        (Some(report), true) => say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        (Some(report), false) => say!("{}", gauntlet_report::to_markdown(&report).trim_end()),
        (None, true) => say!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        ),
        (None, false) => say!(
            "run {} ({} {}) started {} is {}; it has no report (it never finished). Run directory: {}",
            summary.id,
            summary.service,
            summary.version,
            summary.started_at,
            summary.status,
            summary.run_dir
        ),
    }
    Ok(exit::GO)
}

/// Writes the confirmation a running run's manual runbook step waits for.
fn confirm(
    global: &Global,
    run: &str,
    step: Option<&str>,
    by: Option<String>,
) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "an operator".into());
    let run_dir = Path::new(&summary.run_dir);
    match gauntlet_engine::runbook::record_confirmation(run_dir, step, &by) {
        Ok(name) => {
            say!("confirmed `{name}` in run {} (as {by})", summary.id);
            Ok(exit::GO)
        }
        Err(gauntlet_engine::runbook::ConfirmError::Io(e)) => Err(CliError::Internal(
            anyhow::anyhow!("{}: {e}", run_dir.display()),
        )),
        Err(refused) => Err(CliError::Usage(format!("run {}: {refused}", summary.id))),
    }
}

/// Prints the burn-rate rules of OpenSLO files; a file that cannot be mapped is invalid input.
fn slo_rules(files: &[std::path::PathBuf]) -> Result<i32, CliError> {
    let mut slos = Vec::new();
    for file in files {
        let shown = file.display().to_string();
        let text =
            std::fs::read_to_string(file).map_err(|e| CliError::Usage(format!("{shown}: {e}")))?;
        let read = gauntlet_metrics::openslo::read(&text, &shown)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        slos.extend(read);
    }
    if slos.is_empty() {
        return Err(CliError::Usage("no `kind: SLO` in the files given".into()));
    }
    say!(
        "{}",
        gauntlet_metrics::openslo::burn_rate_rules(&slos).trim_end()
    );
    Ok(exit::GO)
}

/// Writes a stored run's gameday report, by the policy and owners of the run's own spec.
fn gameday(global: &Global, run: &str, out: Option<&Path>) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let report = store
        .report(&summary.id)
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| {
            CliError::Usage(format!(
                "run {} has no report (it never finished)",
                summary.id
            ))
        })?;
    let run_dir = Path::new(&summary.run_dir);
    let text = std::fs::read_to_string(run_dir.join("spec.yaml"))
        .map_err(|e| CliError::Usage(format!("run {}'s spec copy: {e}", summary.id)))?;
    let plan = gauntlet_spec::plan_str(
        "spec.yaml",
        &text,
        &Default::default(),
        report.seed.unwrap_or(0),
    )
    .map_err(|e| {
        CliError::Usage(format!(
            "run {}'s spec copy no longer plans: {e}",
            summary.id
        ))
    })?;
    let gameday = gauntlet_review::gameday::gameday(&report, &plan);
    let dir = out.unwrap_or(run_dir);
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        gauntlet_report::write_atomic(&path, bytes)
            .map(|()| path)
            .map_err(|e| CliError::Internal(anyhow::anyhow!("{}: {e}", dir.join(name).display())))
    };
    let json = serde_json::to_vec_pretty(&gameday).map_err(anyhow::Error::from)?;
    let md = write(
        "gameday.md",
        gauntlet_report::gameday::gameday_markdown(&gameday).as_bytes(),
    )?;
    write("gameday.json", &json)?;
    say!(
        "gameday report: {} (also gameday.json): {} scenarios, {} action items",
        md.display(),
        gameday.scenarios.len(),
        gameday.action_items.len()
    );
    Ok(exit::GO)
}

/// Acknowledges a drill's page in a running run (before or while the run waits for it).
fn ack(global: &Global, run: &str, drill: &str, by: Option<String>) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let summary = store.find_run(run).map_err(CliError::from_store)?;
    let run_dir = Path::new(&summary.run_dir);
    if run_dir.join("report.json").exists() {
        return Err(CliError::Usage(format!(
            "run {} has finished: there is no page left to acknowledge",
            summary.id
        )));
    }
    if !gauntlet_engine::incident::pages(run_dir, drill) {
        return Err(CliError::Usage(format!(
            "run {} has no drill named `{drill}` (the rehearsal's page is `rollback-rehearsal`)",
            summary.id
        )));
    }
    let by = by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "an operator".into());
    let waiting = gauntlet_engine::incident::record_ack(run_dir, drill, &by)
        .map_err(|e| CliError::Internal(anyhow::anyhow!("{}: {e}", run_dir.display())))?;
    match waiting {
        true => say!(
            "acknowledged the page of `{drill}` in run {} (as {by})",
            summary.id
        ),
        false => say!(
            "acknowledged `{drill}` in run {} (as {by}); the run will count it when its page arrives",
            summary.id
        ),
    }
    Ok(exit::GO)
}

fn recover(global: &Global, run: Option<&str>) -> Result<i32, CliError> {
    let store = open_store(global)?;
    let recovered = gauntlet_engine::recover_runs(&store, run).map_err(anyhow::Error::from)?;
    if recovered.is_empty() {
        say!("nothing to recover: no dead run left anything applied");
    }
    for run in recovered {
        say!("run {} ({}):", run.run_id, run.run_dir.display());
        for line in run.undone {
            say!("  {line}");
        }
    }
    Ok(exit::GO)
}

fn demo_service(service: DemoService) -> Result<i32, CliError> {
    let rt = runtime()?;
    match service {
        DemoService::App {
            port,
            data_dir,
            version,
            api_key,
            admin_token,
            rate_limit,
            primary,
            secondary,
            defect,
            defect_env,
            seed,
        } => {
            // Defects named in the environment change the binary's behaviour without
            // changing the (signed) spec that starts it.
            let defects = knobs(&defect, defect_env)?;
            let config = demo_service::AppConfig {
                port,
                version,
                data_dir,
                api_key,
                admin_token,
                rate_limit,
                primary,
                secondary,
                defects,
                seed,
            };
            rt.block_on(demo_service::run_app(config))
                .map_err(|e| anyhow::anyhow!("demo service: {e}"))?;
        }
        DemoService::Provider { port, name } => {
            rt.block_on(demo_service::run_provider(demo_service::ProviderConfig {
                port,
                name,
            }))
            .context("demo provider")?;
        }
        DemoService::Rag {
            port,
            version,
            docs,
            cache,
            primary,
            secondary,
            prompt,
            admin_token,
            max_k,
            defect,
            defect_env,
        } => {
            let config = demo_service::rag::RagConfig {
                port,
                version,
                docs,
                cache,
                primary,
                secondary,
                prompt,
                admin_token,
                max_k,
                defects: knobs(&defect, defect_env)?,
            };
            rt.block_on(demo_service::rag::run_rag(config))
                .map_err(|e| anyhow::anyhow!("rag demo service: {e}"))?;
        }
        DemoService::Docs { port, corpus } => {
            let config = demo_service::rag::docs::DocsConfig { port, corpus };
            rt.block_on(demo_service::rag::docs::run_docs(config))
                .context("rag document store")?;
        }
        DemoService::Llm { port, model } => {
            let config = demo_service::rag::llm::LlmConfig { port, model };
            rt.block_on(demo_service::rag::llm::run_llm(config))
                .context("rag model provider")?;
        }
        DemoService::Cache { port, ttl } => {
            let config = demo_service::rag::cache::CacheConfig { port, ttl };
            rt.block_on(demo_service::rag::cache::run_cache(config))
                .context("rag answer cache")?;
        }
    }
    Ok(exit::GO)
}

/// The defect knobs a demo system was given, on its command line and in the environment
/// variable named (how `gauntlet demo --defect` reaches it without changing the signed spec).
fn knobs<K: std::str::FromStr>(given: &[String], env: Option<String>) -> Result<Vec<K>, CliError>
where
    K::Err: std::fmt::Display,
{
    let from_env = env
        .and_then(|var| std::env::var(var).ok())
        .unwrap_or_default();
    given
        .iter()
        .map(String::as_str)
        .chain(from_env.split(',').map(str::trim))
        .filter(|d| !d.is_empty() && *d != "none")
        .map(|d| {
            d.parse()
                .map_err(|e: K::Err| CliError::Usage(e.to_string()))
        })
        .collect()
}
