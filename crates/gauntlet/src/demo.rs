//! `gauntlet demo`: the spec shipped as `examples/demo.yaml`, with the candidate's defect
//! knobs filled in. The spec starts the demo system itself (`{gauntlet} demo-service …`),
//! so the engine runs it like any other spec and stops every process afterwards.

/// The name the demo spec goes by in messages and reports.
pub const SPEC_NAME: &str = "examples/demo.yaml";

const DEMO_SPEC: &str = include_str!("../../../examples/demo.yaml");

/// The one place in the demo spec that says which defects the candidate has.
const DEFECT_MARKER: &str = "\"--defect=none\"";

/// The demo spec with `defects` set on the candidate; an unknown knob is a usage error.
pub fn spec_text(defects: &[String]) -> Result<String, String> {
    for knob in defects {
        knob.parse::<demo_service::Defect>()
            .map_err(|e| e.to_string())?;
    }
    if defects.is_empty() {
        return Ok(DEMO_SPEC.to_string());
    }
    let args = defects
        .iter()
        .map(|knob| format!("\"--defect={knob}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(DEMO_SPEC.replacen(DEFECT_MARKER, &args, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_appears_once_on_the_candidate() {
        assert_eq!(DEMO_SPEC.matches(DEFECT_MARKER).count(), 1);
        let text = spec_text(&["auth-bypass".into(), "errors=5%".into()]).unwrap();
        assert!(text.contains("\"--defect=auth-bypass\", \"--defect=errors=5%\""));
        assert!(!text.contains(DEFECT_MARKER));
    }

    #[test]
    fn unknown_knobs_are_refused() {
        assert!(
            spec_text(&["flaky".into()])
                .unwrap_err()
                .contains("unknown defect")
        );
    }

    #[test]
    fn the_shipped_demo_spec_is_valid() {
        let spec = gauntlet_spec::load_str(SPEC_NAME, DEMO_SPEC).unwrap();
        assert!(spec.steps.security.is_some() && spec.steps.observability.is_some());
    }
}
