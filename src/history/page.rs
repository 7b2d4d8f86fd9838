//! `sessionguard explain SESSION --html FILE`: a session's story as one self-contained HTML
//! page — its lineage, an inline SVG time chart (events, each rule's state changes, the
//! decisions), the rule states, the events and the decisions — the picture an analyst wants
//! when a kill is questioned.
//!
//! Self-contained: no script, no external style, font or image; the page opens from a file or
//! an e-mail attachment offline. Everything from a record is attacker-controlled (an event's
//! action or user agent is whatever the caller sent), so every text goes through [`escape`],
//! and the page's Content-Security-Policy forbids scripts outright: were a value ever left
//! unescaped, it still could not run.

use std::fmt::Write as _;

use super::explain::{time_text, Story};

/// Text as HTML text or attribute value: `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:18px;font-family:monospace;word-break:break-all}\
h2{font-size:15px;margin-top:28px}\
table{border-collapse:collapse;font-size:13px}\
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
td.mono,span.mono{font-family:monospace}td.time{white-space:nowrap}\
tr.decision td{background:#fde8e8}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}\
dt{font-weight:600}dd{margin:0;font-family:monospace;word-break:break-all}\
svg text{font-size:11px;font-family:monospace}";

/// Chart geometry: the left margin holds lane names.
const CHART_WIDTH: f64 = 1000.0;
const LABEL_WIDTH: f64 = 260.0;
const LANE_HEIGHT: f64 = 24.0;
const TOP: f64 = 10.0;

/// The page for `story`.
pub fn render(story: &Story) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let key = escape(&story.key);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\
         <title>session {key}</title><style>{STYLE}</style></head><body>\n\
         <h1 id=\"session\">session {key}</h1>\n"
    );
    lineage(&mut page, story);
    let _ = writeln!(page, "<h2>Time chart</h2>");
    chart(&mut page, story);
    states(&mut page, story);
    events(&mut page, story);
    decisions(&mut page, story);
    page.push_str("<p><small>sessionguard explain</small></p></body></html>\n");
    page
}

fn lineage(page: &mut String, story: &Story) {
    page.push_str("<section id=\"lineage\"><h2>Lineage</h2><dl>\n");
    match &story.parent {
        Some((parent, time, action)) => {
            let _ = writeln!(
                page,
                "<dt>parent</dt><dd class=\"parent\">{} <small>(issued it with {} at {})</small></dd>",
                escape(parent),
                escape(action),
                time_text(*time)
            );
        }
        None => page.push_str("<dt>parent</dt><dd>none in the archive</dd>\n"),
    }
    if !story.chain.is_empty() {
        let mut links: Vec<String> = story.chain.iter().rev().map(|k| escape(k)).collect();
        links.push("this session".to_owned());
        let _ = writeln!(page, "<dt>chain</dt><dd>{}</dd>", links.join(" → "));
    }
    if let Some(root) = &story.root {
        let _ = writeln!(page, "<dt>root</dt><dd>{}</dd>", escape(root));
    }
    for (child, time, action, role) in &story.children {
        let role = if role.is_empty() {
            String::new()
        } else {
            format!(" as {}", escape(role))
        };
        let _ = writeln!(
            page,
            "<dt>child</dt><dd class=\"child\">{} <small>({}{role} at {})</small></dd>",
            escape(child),
            escape(action),
            time_text(*time)
        );
    }
    if story.parent.is_none() && story.children.is_empty() && story.chain.is_empty() {
        page.push_str("<dt>children</dt><dd>none in the archive</dd>\n");
    }
    let _ = writeln!(
        page,
        "<dt>counts</dt><dd>{} events, {} decisions</dd></dl></section>",
        story.events.len(),
        story.decisions.len()
    );
}

/// The SVG chart: a lane for the events, one per rule whose state moved, one for the
/// decisions; time runs left to right; every mark has a tooltip (`<title>`).
fn chart(page: &mut String, story: &Story) {
    let mut rules: Vec<&str> = Vec::new();
    for s in &story.states {
        if !rules.contains(&s.rule_id.as_str()) {
            rules.push(&s.rule_id);
        }
    }
    let times = story
        .events
        .iter()
        .map(|e| e.time)
        .chain(story.states.iter().map(|s| s.time))
        .chain(story.decisions.iter().map(|d| d.time));
    let (start, end) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let lanes = rules.len() + 2;
    let height = TOP + lanes as f64 * LANE_HEIGHT + 30.0;
    let _ = writeln!(
        page,
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{CHART_WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {CHART_WIDTH} {height}\" role=\"img\">\
         <title>events, rule states and decisions of the session over time</title>"
    );
    if start > end {
        page.push_str("<text x=\"10\" y=\"20\">nothing to chart</text></svg>\n");
        return;
    }
    let plot = CHART_WIDTH - LABEL_WIDTH - 20.0;
    let x = |t: i64| -> f64 {
        if end == start {
            LABEL_WIDTH + plot / 2.0
        } else {
            LABEL_WIDTH + (t - start) as f64 / (end - start) as f64 * plot
        }
    };
    let lane_y = |lane: usize| TOP + lane as f64 * LANE_HEIGHT + LANE_HEIGHT / 2.0;
    // Lanes and their names.
    let mut names = vec!["events".to_owned()];
    names.extend(rules.iter().map(|r| format!("rule {r}")));
    names.push("decisions".to_owned());
    for (lane, name) in names.iter().enumerate() {
        let y = lane_y(lane);
        let _ = write!(
            page,
            "<line x1=\"{LABEL_WIDTH}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e3e3e3\"/>\
             <text x=\"4\" y=\"{}\">{}</text>",
            CHART_WIDTH - 20.0,
            y + 4.0,
            escape(&clip(name, 36))
        );
    }
    // Decisions: a dashed line across every lane, and a diamond on their own.
    let last = lanes - 1;
    for d in &story.decisions {
        let (cx, cy) = (x(d.time), lane_y(last));
        let _ = write!(
            page,
            "<g class=\"decision-mark\"><title>{} {} {}: {}</title>\
             <line x1=\"{cx:.1}\" x2=\"{cx:.1}\" y1=\"{TOP}\" y2=\"{cy:.1}\" stroke=\"#c0392b\" \
             stroke-dasharray=\"3,3\"/>\
             <polygon points=\"{:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1}\" \
             fill=\"#c0392b\"/></g>",
            time_text(d.time),
            escape(&d.rule_id),
            escape(&d.action),
            escape(&d.reason),
            cx - 6.0,
            cy - 6.0,
            cx + 6.0,
            cy + 6.0
        );
    }
    for e in &story.events {
        let fill = match e.outcome.as_str() {
            "success" => "#2e86c1",
            "failure" => "#e67e22",
            _ => "#888",
        };
        let _ = write!(
            page,
            "<circle class=\"event-mark\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{fill}\">\
             <title>{} {} {}</title></circle>",
            x(e.time),
            lane_y(0),
            time_text(e.time),
            escape(&e.action),
            escape(&e.outcome)
        );
    }
    for s in &story.states {
        let lane = 1 + rules.iter().position(|r| *r == s.rule_id).unwrap_or(0);
        let _ = write!(
            page,
            "<rect class=\"state-mark\" x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" \
             fill=\"#7d3c98\"><title>{} {}: {}</title></rect>",
            x(s.time) - 3.5,
            lane_y(lane) - 3.5,
            time_text(s.time),
            escape(&s.rule_id),
            escape(&s.state)
        );
    }
    // The time axis: its ends.
    let axis = TOP + lanes as f64 * LANE_HEIGHT + 16.0;
    let _ = writeln!(
        page,
        "<text x=\"{LABEL_WIDTH}\" y=\"{axis}\">{}</text>\
         <text x=\"{}\" y=\"{axis}\" text-anchor=\"end\">{}</text></svg>",
        time_text(start),
        CHART_WIDTH - 20.0,
        time_text(end)
    );
}

/// At most `max` characters, with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn states(page: &mut String, story: &Story) {
    page.push_str(
        "<h2>Rule states</h2><table id=\"rule-states\"><tr><th>time</th><th>rule</th>\
         <th>logic</th><th>state</th></tr>\n",
    );
    for s in &story.states {
        let _ = writeln!(
            page,
            "<tr class=\"state\"><td class=\"mono time\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time_text(s.time),
            escape(&s.rule_id),
            s.logic,
            escape(&s.state)
        );
    }
    page.push_str("</table>\n");
}

fn events(page: &mut String, story: &Story) {
    page.push_str(
        "<h2>Events</h2><table id=\"events\"><tr><th>time</th><th>action</th><th>outcome</th>\
         <th>source address</th><th>bytes</th><th>user agent</th><th>read from</th></tr>\n",
    );
    for e in &story.events {
        let _ = writeln!(
            page,
            "<tr class=\"event\"><td class=\"mono time\">{}</td><td class=\"mono\">{}</td><td>{}</td>\
             <td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            time_text(e.time),
            escape(&e.action),
            escape(&e.outcome),
            escape(e.src_ip.as_deref().unwrap_or("")),
            e.bytes.map(|b| b.to_string()).unwrap_or_default(),
            escape(e.user_agent.as_deref().unwrap_or("")),
            escape(&e.origin)
        );
    }
    page.push_str("</table>\n");
}

fn decisions(page: &mut String, story: &Story) {
    page.push_str(
        "<h2>Decisions</h2><table id=\"decisions\"><tr><th>time</th><th>rule</th>\
         <th>action</th><th>severity</th><th>reason</th></tr>\n",
    );
    for d in &story.decisions {
        let _ = writeln!(
            page,
            "<tr class=\"decision\"><td class=\"mono time\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            time_text(d.time),
            escape(&d.rule_id),
            escape(&d.action),
            escape(&d.severity),
            escape(&d.reason)
        );
    }
    page.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_a_record_becomes_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
