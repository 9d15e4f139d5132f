//! The parameters a sequential judge is built from, checked rather than clamped: a judge
//! built from a nonsensical p0, δ, α or β would answer, and its answers would mean nothing.

/// A parameter outside the range its test is defined on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("p0 is {0}: the known rate must be strictly between 0 and 1")]
    P0(f64),
    #[error("p1 is {p1}: it must be strictly between p0 ({p0}) and 1 (p0 + delta below 1)")]
    P1 { p0: f64, p1: f64 },
    #[error("delta is {0}: the smallest rise that matters must be strictly between 0 and 1")]
    Delta(f64),
    #[error("{name} is {value}: an error rate must be strictly between 0 and 1/2")]
    ErrorRate { name: &'static str, value: f64 },
}

/// α and β of a test: each in (0, ½).
pub fn error_rates(alpha: f64, beta: f64) -> Result<(), ParamError> {
    for (name, value) in [("alpha", alpha), ("beta", beta)] {
        if !(value > 0.0 && value < 0.5) {
            return Err(ParamError::ErrorRate { name, value });
        }
    }
    Ok(())
}

/// The SPRT's hypotheses: 0 < p0 < p1 < 1.
pub fn rates(p0: f64, p1: f64) -> Result<(), ParamError> {
    if !(p0 > 0.0 && p0 < 1.0) {
        return Err(ParamError::P0(p0));
    }
    if !(p1 > p0 && p1 < 1.0) {
        return Err(ParamError::P1 { p0, p1 });
    }
    Ok(())
}

/// A two-sample test's smallest rise: 0 < δ < 1.
pub fn delta(delta: f64) -> Result<(), ParamError> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(ParamError::Delta(delta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_outside_their_range_are_named_never_clamped() {
        assert!(rates(0.01, 0.04).is_ok());
        assert_eq!(rates(0.0, 0.04), Err(ParamError::P0(0.0)));
        assert_eq!(rates(0.5, 0.4), Err(ParamError::P1 { p0: 0.5, p1: 0.4 }));
        assert_eq!(
            rates(0.98, 1.03),
            Err(ParamError::P1 { p0: 0.98, p1: 1.03 })
        );
        assert!(rates(f64::NAN, 0.5).is_err());
        assert!(delta(0.03).is_ok());
        assert!(delta(0.0).is_err() && delta(1.0).is_err() && delta(f64::NAN).is_err());
        assert!(error_rates(0.05, 0.1).is_ok());
        assert_eq!(
            error_rates(0.05, 0.5),
            Err(ParamError::ErrorRate {
                name: "beta",
                value: 0.5
            })
        );
    }
}
