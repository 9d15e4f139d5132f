//! Live progress on stderr: a spinner per step with elapsed time on a terminal, plain
//! timestamped lines otherwise, nothing with `--quiet`. Colour only on a terminal and
//! never when `NO_COLOR` is set.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use gauntlet_engine::{Observer, now_rfc3339};
use gauntlet_report::{Decision, Outcome, StepReport, TimelineEvent};
use indicatif::{ProgressBar, ProgressStyle};

pub fn colour_enabled() -> bool {
    std::io::stderr().is_terminal() && no_color_unset()
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the decision's colour when the stream it goes to (stdout or stderr) is a
/// terminal.
pub fn paint(text: &str, decision: Decision, on_stdout: bool) -> String {
    let terminal = if on_stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    if !(terminal && no_color_unset()) {
        return text.to_string();
    }
    let code = match decision {
        Decision::Go => "32",
        Decision::Conditional | Decision::Inconclusive => "33",
        Decision::NoGo | Decision::Aborted => "31",
    };
    format!("\x1b[1;{code}m{text}\x1b[0m")
}

fn mark(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "✔",
        Outcome::Warn => "!",
        Outcome::Fail => "✘",
        Outcome::Inconclusive => "?",
        Outcome::Skipped => "-",
    }
}

pub enum Progress {
    Terminal { bar: Mutex<Option<ProgressBar>> },
    Plain,
}

impl Progress {
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Terminal {
                bar: Mutex::new(None),
            }
        } else {
            Progress::Plain
        }
    }
}

fn summary(step: &StepReport) -> String {
    let passed = step.checks.iter().filter(|c| c.outcome.is_pass()).count();
    let failing: Vec<&str> = step
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Inconclusive))
        .map(|c| c.name.as_str())
        .take(3)
        .collect();
    let mut text = format!(
        "{} {:<14} {:<12} {passed}/{} checks passed  {:.1}s",
        mark(step.outcome),
        step.name,
        step.outcome.as_str(),
        step.checks.len(),
        step.duration_ms as f64 / 1000.0
    );
    if !failing.is_empty() {
        text.push_str(&format!("  ({})", failing.join("; ")));
    }
    if let Some(note) = &step.note {
        text.push_str(&format!("  — {note}"));
    }
    text
}

impl Observer for Progress {
    fn step_started(&self, step: &str) {
        match self {
            Progress::Terminal { bar } => {
                let spinner = ProgressBar::new_spinner().with_message(step.to_string());
                spinner.set_style(
                    ProgressStyle::with_template("{spinner} {msg:<14} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                spinner.enable_steady_tick(Duration::from_millis(100));
                *bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(spinner);
            }
            Progress::Plain => note!("[{}] {step}: started", now_rfc3339()),
        }
    }

    fn step_finished(&self, step: &StepReport) {
        match self {
            Progress::Terminal { bar } => {
                let line = summary(step);
                match bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    Some(spinner) => {
                        spinner.set_style(
                            ProgressStyle::with_template("{msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        spinner.finish_with_message(line);
                    }
                    None => note!("{line}"),
                }
            }
            Progress::Plain => note!("[{}] {}", now_rfc3339(), summary(step)),
        }
    }

    fn progress(&self, step: &str, what: &str, done: u64, total: u64) {
        let Progress::Terminal { bar } = self else {
            return;
        };
        if let Some(bar) = bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<14} [{bar:30}] {pos}/{len} {msg} {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(step.to_string());
                bar.set_message(what.to_string());
            }
            bar.set_position(done);
        }
    }

    fn event(&self, event: &TimelineEvent) {
        if matches!(event.kind.as_str(), "step-started" | "step-finished") {
            return;
        }
        match self {
            Progress::Terminal { bar } => {
                let bar = bar.lock().unwrap_or_else(|e| e.into_inner());
                // A drill's gameday timeline stays on screen, a line per event.
                if event.kind.starts_with("drill-") {
                    match bar.as_ref() {
                        Some(spinner) => spinner.println(format!("  {}", event.message)),
                        None => note!("  {}", event.message),
                    }
                } else if let Some(spinner) = bar.as_ref() {
                    spinner.set_message(format!(
                        "{:<14} {}",
                        event.step.as_deref().unwrap_or(""),
                        event.message
                    ));
                }
            }
            Progress::Plain => note!(
                "[{}] {}: {}",
                event.at,
                event.step.as_deref().unwrap_or("run"),
                event.message
            ),
        }
    }
}
