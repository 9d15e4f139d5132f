//! Charts as SVG, hand-written and deterministic (the same input draws the same bytes, so
//! they can be snapshot-tested): a drill's gameday timeline and a judge's trajectory. Also
//! the one escape for text put into SVG or HTML.

use std::fmt::Write as _;
use std::time::Duration;

use gauntlet_stats::Point;

use crate::DrillEvent;

/// Text made safe for SVG and HTML, in elements and in quoted attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal gameday timeline: the fault window shaded, each probe round a dot (green
/// held, red broke), each event a tick with its label.
pub fn timeline(name: &str, events: &[DrillEvent], rounds: &[(Duration, bool)]) -> String {
    let end_ms = events
        .iter()
        .map(|e| e.at_ms)
        .chain(rounds.iter().map(|(at, _)| at.as_millis() as u64))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, width) = (40.0, 820.0);
    let x = |ms: f64| left + width * ms / end_ms;
    let height = 120 + 18 * events.len();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}" font-family="sans-serif" font-size="12"><title>drill {}</title><text x="{left}" y="20" font-size="14">drill {} — gameday timeline ({:.1}s)</text>"#,
        escape(name),
        escape(name),
        end_ms / 1000.0
    );
    let applied = events
        .iter()
        .find(|e| e.kind == "fault-applied")
        .map(|e| e.at_ms as f64);
    let removed = events
        .iter()
        .rev()
        .find(|e| e.kind == "fault-removed")
        .map(|e| e.at_ms as f64);
    if let (Some(a), Some(r)) = (applied, removed) {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="35" width="{:.1}" height="50" fill="#f8d7da"/><text x="{:.1}" y="48">faults in</text>"##,
            x(a),
            (x(r) - x(a)).max(1.0),
            x(a) + 3.0
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="85" x2="{:.1}" y2="85" stroke="#333"/>"##,
        left + width
    );
    for (at, held) in rounds {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="70" r="3" fill="{}"/>"##,
            x(at.as_millis() as f64),
            if *held { "#2e7d32" } else { "#c62828" }
        );
    }
    for (i, event) in events.iter().enumerate() {
        let ex = x(event.at_ms as f64);
        let y = 105 + 18 * i;
        let _ = write!(
            svg,
            r##"<line x1="{ex:.1}" y1="85" x2="{ex:.1}" y2="{}" stroke="#999" stroke-dasharray="2,2"/><text x="{:.1}" y="{y}">+{:.2}s {} — {}</text>"##,
            y - 4,
            ex + 3.0,
            event.at_ms as f64 / 1000.0,
            escape(&event.kind),
            escape(&event.detail.chars().take(90).collect::<String>())
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// A judge's trajectory as SVG: the statistic against observations, with the reject (red)
/// and accept (green) boundaries. Deterministic output for the same trajectory.
pub fn trajectory(title: &str, points: &[Point]) -> String {
    let (w, h, pad) = (640.0, 320.0, 48.0);
    let max_n = points.iter().map(|p| p.n).max().unwrap_or(1).max(1) as f64;
    let mut lo = points.iter().map(|p| p.statistic).fold(0.0f64, f64::min);
    let mut hi = points.iter().map(|p| p.statistic).fold(0.0f64, f64::max);
    for p in points {
        hi = hi.max(p.reject_at);
        if let Some(a) = p.accept_at {
            lo = lo.min(a);
        }
    }
    let span = (hi - lo).max(1e-9) * 1.1;
    let lo = lo - 0.05 * span;
    let x = |n: f64| pad + (w - 2.0 * pad) * n / max_n;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / span;
    let path: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.n as f64), y(p.statistic)))
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{pad}\" y=\"20\" font-size=\"14\">{}</text>\n\
         <line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#888\"/>\n\
         <text x=\"{pad}\" y=\"{:.1}\">observations →</text>\n",
        escape(title),
        h - pad,
        w - pad,
        h - pad,
        h - 12.0
    );
    if let Some(last) = points.last() {
        svg.push_str(&format!(
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"6 4\"/><text x=\"{2:.1}\" y=\"{3:.1}\" fill=\"#c0392b\">reject {4:.2}</text>\n",
            y(last.reject_at),
            w - pad,
            w - pad - 90.0,
            y(last.reject_at) - 4.0,
            last.reject_at
        ));
        if let Some(accept) = last.accept_at {
            svg.push_str(&format!(
                "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#27ae60\" stroke-dasharray=\"6 4\"/><text x=\"{2:.1}\" y=\"{3:.1}\" fill=\"#27ae60\">accept {4:.2}</text>\n",
                y(accept),
                w - pad,
                w - pad - 90.0,
                y(accept) + 14.0,
                accept
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">n = {}</text>\n",
            w - pad - 60.0,
            h - 12.0,
            last.n
        ));
    }
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#2c3e50\" stroke-width=\"1.5\" points=\"{}\"/>\n</svg>\n",
        path.join(" ")
    ));
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_stats::Judge as _;

    #[test]
    fn text_in_a_chart_is_never_markup() {
        let events = [DrillEvent {
            at_ms: 10,
            kind: "start".into(),
            detail: "<script>alert(\"x\")</script> & more".into(),
        }];
        let svg = timeline("<b>", &events, &[(Duration::from_millis(5), true)]);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert_eq!(
            svg,
            timeline("<b>", &events, &[(Duration::from_millis(5), true)])
        );
        let points = [Point {
            n: 1,
            statistic: 0.5,
            reject_at: 2.0,
            accept_at: Some(-2.0),
        }];
        let drawn = trajectory("a & b", &points);
        assert!(drawn.contains("a &amp; b") && drawn.contains("reject 2.00"));
    }

    #[test]
    fn the_svg_is_deterministic_and_marks_both_boundaries() {
        let mut sprt = gauntlet_stats::Sprt::new(0.01, 0.04, 0.05, 0.05).unwrap();
        for i in 0..200 {
            sprt.observe(i % 50 != 0);
        }
        let svg = trajectory("stage 1 <shadow>: error-rate", &sprt.trajectory().points);
        assert_eq!(
            svg,
            trajectory("stage 1 <shadow>: error-rate", &sprt.trajectory().points)
        );
        assert!(
            svg.contains("reject 3.00") && svg.contains("accept -3.00"),
            "{svg}"
        );
        assert!(svg.contains("&lt;shadow&gt;"));
    }
}
