//! The Gauntlet spec: `gauntlet.yaml` parsed with source locations, validated, and
//! described as a JSON Schema.
//!
//! Loading never panics and never half-succeeds: it returns a [`Spec`] whose units are
//! parsed and whose names resolve, or every problem it found as a [`SpecDiagnostic`] that
//! names file:line:col, shows the line and says what was expected.
//!
//! ```
//! let yaml = "schema_version: 1\nservice: {name: shop, version: 1.2.0}\n\
//!             targets: {candidate: {url: 'http://127.0.0.1:8080'}}\n\
//!             traffic: {rate: 50/s, requests: [{path: /}]}\n";
//! let spec = gauntlet_spec::load_str("gauntlet.yaml", yaml).unwrap();
//! assert_eq!(spec.service.name, "shop");
//! ```

pub mod call;
pub mod chaostoolkit;
mod diagnostic;
pub mod fault;
pub mod gameday;
pub mod incident;
pub mod limits;
mod locate;
mod model;
pub mod plan;
pub mod probe;
pub mod prometheus;
pub mod runbook;
pub mod steps;
pub mod toxiproxy;
mod trust;
pub mod units;
pub mod usage;
mod validate;

pub use call::{Call, HttpCall};
pub use diagnostic::{SpecDiagnostic, did_you_mean};
pub use fault::*;
pub use gameday::GamedaySection;
pub use incident::{Incident, Responder};
pub use model::*;
pub use plan::{
    Hint, Plan, PlanError, Seed, Selection, Signoffs, StepMeta, StepPlan, System, Systems, Traffic,
    Trust,
};
pub use probe::*;
pub use prometheus::*;
pub use runbook::{Manual, Runbook, RunbookStep};
pub use steps::StepName;
pub use steps::canary::*;
pub use steps::chaos::*;
pub use steps::dr::*;
pub use steps::gates::*;
pub use steps::observability::*;
pub use steps::preflight::*;
pub use steps::quality::{Ablation, AblationPlan, Assertion, QualityPlan, QualityStep};
pub use steps::readiness::*;
pub use steps::rehearsal::*;
pub use steps::rotation::*;
pub use steps::security::*;
pub use trust::*;
pub use usage::{Price, Usage};
pub use validate::placeholders;

use std::path::Path;

/// Every problem found in one spec file; never empty.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the spec", .0.len())]
pub struct SpecErrors(pub Vec<SpecDiagnostic>);

/// Reads a spec file as text, with a located message when it cannot be read.
pub fn read_file(path: &Path) -> Result<String, SpecErrors> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        SpecErrors(vec![SpecDiagnostic::whole_file(
            &name,
            format!("cannot read the spec: {e}"),
            Some(
                "check the path; `gauntlet demo` writes a complete example into its run directory"
                    .into(),
            ),
        )])
    })?;
    String::from_utf8(bytes).map_err(|e| {
        SpecErrors(vec![SpecDiagnostic::whole_file(
            &name,
            format!(
                "the spec is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            None,
        )])
    })
}

/// Reads and validates a spec file.
pub fn load_file(path: &Path) -> Result<Spec, SpecErrors> {
    load_str(&path.display().to_string(), &read_file(path)?)
}

/// Parses spec text and checks every step it configures; `file` is the name used in
/// messages.
pub fn load_str(file: &str, text: &str) -> Result<Spec, SpecErrors> {
    let spec = parse(file, text)?;
    let problems = validate::check(file, text, &spec, &spec.configured());
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(SpecErrors(problems))
    }
}

/// Parses spec text, checks what a run of `selection` will do, and resolves it into a
/// [`Plan`] (a step that will not run is not checked, and is listed with why).
pub fn plan_str(
    file: &str,
    text: &str,
    selection: &Selection,
    seed: u64,
) -> Result<Plan, PlanError> {
    parse(file, text)?.plan(file, text, selection, seed)
}

/// Parses spec text into the spec as written, its version first (a version this build does
/// not know is said as such, not as the fields it lacks). Nothing beyond the YAML and the
/// types of its values is checked.
pub fn parse(file: &str, text: &str) -> Result<Spec, SpecErrors> {
    if text.trim().is_empty() {
        return Err(SpecErrors(vec![SpecDiagnostic::whole_file(
            file,
            "the spec is empty",
            Some(
                "start with `schema_version: 1`; see `gauntlet schema` or examples/demo.yaml"
                    .into(),
            ),
        )]));
    }
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        schema_version: Option<serde_saphyr::Spanned<u32>>,
    }
    if let Ok(Versioned {
        schema_version: Some(version),
    }) = serde_saphyr::from_str_with_options::<Versioned>(text, yaml_options())
        && !SCHEMA_VERSIONS.contains(&version.value)
    {
        return Err(SpecErrors(vec![SpecDiagnostic::at(
            file,
            text,
            version.referenced.line() as usize,
            version.referenced.column() as usize,
            format!(
                "schema_version {} is not one this gauntlet reads",
                version.value
            ),
            Some(format!(
                "versions this gauntlet reads: {}; a newer gauntlet may read {}",
                SCHEMA_VERSIONS
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                version.value
            )),
        )]));
    }
    parse_yaml(file, text)
}

/// The parser's limits: a file that validates cannot exhaust the host while it is read.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_nodes: 200_000,
            max_total_scalar_bytes: 8 * 1024 * 1024,
        },
    }
}

/// Parses a YAML file of gauntlet's (a spec, a server config) into `T` with the spec's
/// limits; a problem is located at file:line:col with what was expected.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, SpecErrors> {
    serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| SpecErrors(vec![validate::from_parse_error(file, text, &e)]))
}

/// The JSON Schema of the spec, for editors.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Spec)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), "gauntlet.yaml (schema_version 1)".into());
        object.insert(
            "$id".into(),
            "https://gauntlet.invalid/schema/gauntlet-spec-v1.json".into(),
        );
    }
    schema
}
