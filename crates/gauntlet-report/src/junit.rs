//! `junit.xml`: one test suite per step, one test case per check, so any CI shows the
//! result natively. A failed check is a failure; an inconclusive one is an error (it could
//! not be measured); a skipped one is skipped.

use quick_junit::{NonSuccessKind, Report as JUnitReport, TestCase, TestCaseStatus, TestSuite};

use crate::model::{Outcome, Report};

pub fn to_junit(report: &Report) -> String {
    let mut junit = JUnitReport::new(format!("gauntlet {}", report.run_id));
    for step in &report.steps {
        let mut suite = TestSuite::new(step.name.as_str());
        for check in &step.checks {
            let detail = format!(
                "measured: {}; threshold: {}; samples: {}",
                check.measured.as_deref().unwrap_or("-"),
                check.threshold.as_deref().unwrap_or("-"),
                check.samples.map_or("-".to_string(), |n| n.to_string())
            );
            let status = match check.outcome {
                Outcome::Pass | Outcome::Warn => TestCaseStatus::success(),
                Outcome::Skipped => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(check.reason.as_str());
                    status
                }
                Outcome::Fail | Outcome::Inconclusive => {
                    let kind = if check.outcome == Outcome::Fail {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut status = TestCaseStatus::non_success(kind);
                    status.set_message(check.reason.as_str());
                    status.set_type(check.outcome.as_str());
                    status.set_description(detail.as_str());
                    status
                }
            };
            let mut case = TestCase::new(check.name.as_str(), status);
            case.set_classname(format!("gauntlet.{}", step.name));
            case.set_system_out(format!("{}\n{detail}", check.reason));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit serialisation failed: {e} -->\n<testsuites/>\n"))
}
