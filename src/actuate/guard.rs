//! The blast-radius guard: a bad rule must not log out the whole company. Before a kill
//! decision reaches any receiver the guard may hold it back, with the reason recorded:
//!
//! - **never-kill list**: principals (id or name) and session keys named in config — break-glass
//!   accounts, service accounts — are never killed; an entry ending in `*` is a prefix;
//! - **limits**: kills per minute and per hour, per rule and overall;
//! - **trip**: a rule that reaches its per-minute limit is switched to `dry_run` for
//!   `cool_off` and an alert is raised (once per trip); its kills are held back meanwhile.
//!
//! Windows are on the decisions' own time (event time), like the engine: the same decisions in
//! the same order are held back alike on every run, and a backlog delivered late is judged by
//! when its kills were decided, not by how fast it is read. Only enforcing kill decisions
//! (`revoke_session`, `revoke_credential`) count and can be held back.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::set::DecisionIn;
use crate::units::parse_duration_ms;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    #[serde(default)]
    pub never_kill: Vec<String>,
    #[serde(default)]
    pub overall: Option<LimitSpec>,
    /// Every rule's limits, unless `rules` names the rule.
    #[serde(default)]
    pub per_rule: Option<LimitSpec>,
    #[serde(default)]
    pub rules: BTreeMap<String, LimitSpec>,
    /// How long a tripped rule stays in dry_run (default 1h).
    #[serde(default)]
    pub cool_off: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    #[serde(default)]
    pub per_minute: Option<u32>,
    #[serde(default)]
    pub per_hour: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct GuardSettings {
    never_kill: Vec<String>,
    overall: LimitSpec,
    per_rule: LimitSpec,
    rules: BTreeMap<String, LimitSpec>,
    cool_off_ms: i64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            never_kill: Vec::new(),
            overall: LimitSpec::default(),
            per_rule: LimitSpec::default(),
            rules: BTreeMap::new(),
            cool_off_ms: HOUR_MS,
        }
    }
}

impl GuardSettings {
    pub fn build(spec: GuardSpec) -> Result<GuardSettings, Vec<String>> {
        let mut errors = Vec::new();
        let cool_off_ms = match spec.cool_off.as_deref() {
            None => HOUR_MS,
            Some(text) => match parse_duration_ms(text) {
                Some(ms) if ms > 0 => ms,
                _ => {
                    errors.push(format!("cool_off: {text:?} is not a positive duration"));
                    HOUR_MS
                }
            },
        };
        let limits = [("overall", spec.overall), ("per_rule", spec.per_rule)]
            .into_iter()
            .chain(spec.rules.iter().map(|(r, l)| (r.as_str(), Some(*l))));
        for (name, limit) in limits {
            if let Some(l) = limit {
                if l.per_minute == Some(0) || l.per_hour == Some(0) {
                    errors.push(format!(
                        "{name}: a limit of 0 holds back every kill; leave it out for none"
                    ));
                }
            }
        }
        for entry in &spec.never_kill {
            if entry.trim().is_empty() || entry == "*" {
                errors.push(format!(
                    "never_kill: {entry:?} would name nobody or everybody"
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GuardSettings {
            never_kill: spec.never_kill,
            overall: spec.overall.unwrap_or_default(),
            per_rule: spec.per_rule.unwrap_or_default(),
            rules: spec.rules,
            cool_off_ms,
        })
    }
}

/// What the guard says of one decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Goes on to the receivers.
    Pass,
    /// Held back, with the reason recorded.
    HeldBack(String),
}

/// An alert the guard raises: a rule was switched to dry_run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trip {
    pub rule: String,
    /// The decision time at which the rule was tripped, and until when it stays in dry_run
    /// (milliseconds since the epoch).
    pub at_ms: i64,
    pub until_ms: i64,
    pub kills_in_minute: u32,
    pub limit: u32,
}

/// Kill times, counted by time (a multiset), so decisions out of time order count right.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Times(BTreeMap<i64, u32>);

impl Times {
    fn add(&mut self, t: i64) {
        *self.0.entry(t).or_default() += 1;
    }
    /// Kills in (t - span, t].
    fn within(&self, t: i64, span: i64) -> u32 {
        self.0.range(t - span + 1..=t).map(|(_, n)| n).sum()
    }
    fn forget_before(&mut self, t: i64) {
        self.0 = self.0.split_off(&t);
    }
}

/// The guard's memory: recent kills per rule and overall, tripped rules. Serializable, so it
/// survives a restart in the state file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GuardState {
    overall: Times,
    rules: HashMap<String, Times>,
    /// Rule → decision time until which it is in dry_run.
    tripped: HashMap<String, i64>,
    newest_ms: i64,
}

pub struct Guard {
    settings: GuardSettings,
    state: GuardState,
}

impl Guard {
    pub fn new(settings: GuardSettings, state: GuardState) -> Guard {
        Guard { settings, state }
    }

    pub fn state(&self) -> &GuardState {
        &self.state
    }

    /// Judges `decision`; a kill that passes is counted. A trip raised by this decision is
    /// returned beside the verdict.
    pub fn judge(&mut self, decision: &DecisionIn) -> (Verdict, Option<Trip>) {
        let is_kill = matches!(
            decision.action.as_str(),
            "revoke_session" | "revoke_credential"
        );
        if !is_kill || decision.mode != "enforce" {
            return (Verdict::Pass, None);
        }
        if let Some(entry) = self.never_kill(decision) {
            return (Verdict::HeldBack(format!("never-kill list: {entry}")), None);
        }
        let t = decision.time_ms();
        let rule = decision.rule.id.as_str();
        if t > self.state.newest_ms {
            self.state.newest_ms = t;
            // Nothing older than an hour before the newest decision counts any more.
            let horizon = t - HOUR_MS;
            self.state.overall.forget_before(horizon);
            self.state.rules.retain(|_, times| {
                times.forget_before(horizon);
                !times.0.is_empty()
            });
            self.state.tripped.retain(|_, until| *until > horizon);
        }
        if let Some(&until) = self.state.tripped.get(rule) {
            if t < until {
                return (
                    Verdict::HeldBack(format!(
                        "rule {rule} is in dry_run: the guard tripped it for a rate jump (until {})",
                        rfc3339(until)
                    )),
                    None,
                );
            }
        }
        let limits = self
            .settings
            .rules
            .get(rule)
            .copied()
            .unwrap_or(self.settings.per_rule);
        let times = self.state.rules.entry(rule.to_owned()).or_default();
        if let Some(limit) = limits.per_minute {
            let in_minute = times.within(t, MINUTE_MS);
            if in_minute >= limit {
                let until = t + self.settings.cool_off_ms;
                self.state.tripped.insert(rule.to_owned(), until);
                let trip = Trip {
                    rule: rule.to_owned(),
                    at_ms: t,
                    until_ms: until,
                    kills_in_minute: in_minute + 1,
                    limit,
                };
                let reason = format!(
                    "rule {rule} reached its limit of {limit} kills per minute: switched to dry_run until {}",
                    rfc3339(until)
                );
                return (Verdict::HeldBack(reason), Some(trip));
            }
        }
        if let Some(limit) = limits.per_hour {
            if times.within(t, HOUR_MS) >= limit {
                return (
                    Verdict::HeldBack(format!(
                        "rule {rule} reached its limit of {limit} kills per hour"
                    )),
                    None,
                );
            }
        }
        let overall = &self.settings.overall;
        for (limit, span, per) in [
            (overall.per_minute, MINUTE_MS, "minute"),
            (overall.per_hour, HOUR_MS, "hour"),
        ] {
            if let Some(limit) = limit {
                if self.state.overall.within(t, span) >= limit {
                    return (
                        Verdict::HeldBack(format!(
                            "the overall limit of {limit} kills per {per} is reached"
                        )),
                        None,
                    );
                }
            }
        }
        times.add(t);
        self.state.overall.add(t);
        (Verdict::Pass, None)
    }

    fn never_kill(&self, decision: &DecisionIn) -> Option<&str> {
        let names = [
            decision.principal.id.as_deref(),
            decision.principal.name.as_deref(),
            Some(decision.session.key.as_str()),
        ];
        self.settings
            .never_kill
            .iter()
            .map(String::as_str)
            .find(|entry| {
                names
                    .iter()
                    .flatten()
                    .any(|name| match entry.strip_suffix('*') {
                        Some(prefix) => name.starts_with(prefix),
                        None => name == entry,
                    })
            })
    }
}

fn rfc3339(ms: i64) -> String {
    crate::event::Timestamp::from_millis(ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(rule: &str, who: &str, t_ms: i64) -> DecisionIn {
        let line = format!(
            r#"{{"decision_id":"{rule}-{who}-{t_ms}","time":"{}","mode":"enforce","action":"revoke_session","rule":{{"id":"{rule}"}},"session":{{"key":"okta:{who}"}},"principal":{{"name":"{who}"}}}}"#,
            rfc3339(t_ms)
        );
        DecisionIn::parse(line.as_bytes()).unwrap()
    }

    fn guard(yaml: &str) -> Guard {
        let spec: GuardSpec = serde_saphyr::from_str(yaml).unwrap();
        Guard::new(GuardSettings::build(spec).unwrap(), GuardState::default())
    }

    const T0: i64 = 1_728_699_395_000;

    #[test]
    fn a_rule_that_suddenly_matches_everyone_is_tripped_to_dry_run_once() {
        let mut g = guard("per_rule: { per_minute: 3 }\ncool_off: 10m\n");
        let mut verdicts = Vec::new();
        let mut trips = Vec::new();
        for i in 0..10 {
            let (v, trip) = g.judge(&decision("bad", &format!("u{i}"), T0 + i * 1000));
            verdicts.push(v == Verdict::Pass);
            trips.extend(trip);
        }
        assert_eq!(
            verdicts,
            [true, true, true, false, false, false, false, false, false, false]
        );
        assert_eq!(trips.len(), 1, "one alert per trip");
        assert_eq!(trips[0].rule, "bad");
        assert_eq!(trips[0].until_ms, T0 + 3000 + 600_000);
        // Another rule is not affected.
        assert_eq!(
            g.judge(&decision("good", "v", T0 + 20_000)).0,
            Verdict::Pass
        );
        // Still in dry_run 9 minutes later, though the minute's count has fallen.
        let (v, _) = g.judge(&decision("bad", "w", T0 + 9 * 60_000));
        assert!(matches!(v, Verdict::HeldBack(r) if r.contains("dry_run")));
        // After the cool-off it kills again.
        assert_eq!(
            g.judge(&decision("bad", "x", T0 + 11 * 60_000)).0,
            Verdict::Pass
        );
    }

    #[test]
    fn the_never_kill_list_holds_whatever_the_limits() {
        let mut g = guard("never_kill: [breakglass@corp.example, 'svc-*']\n");
        for who in ["breakglass@corp.example", "svc-backup"] {
            let (v, _) = g.judge(&decision("r", who, T0));
            assert!(
                matches!(v, Verdict::HeldBack(r) if r.starts_with("never-kill list")),
                "{who}"
            );
        }
        assert_eq!(
            g.judge(&decision("r", "alice@corp.example", T0)).0,
            Verdict::Pass
        );
    }

    #[test]
    fn overall_and_hourly_limits_hold_back_without_tripping() {
        let mut g = guard("overall: { per_hour: 4 }\nper_rule: { per_hour: 2 }\n");
        let v: Vec<_> = ["a", "a", "a", "b", "b", "c", "c"]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                g.judge(&decision(r, &format!("u{i}"), T0 + i as i64 * 120_000))
                    .0
            })
            .collect();
        assert_eq!(v[0], Verdict::Pass);
        assert_eq!(v[1], Verdict::Pass);
        assert!(matches!(&v[2], Verdict::HeldBack(r) if r.contains("per hour")));
        assert_eq!(v[3], Verdict::Pass);
        assert_eq!(v[4], Verdict::Pass);
        assert!(matches!(&v[5], Verdict::HeldBack(r) if r.contains("overall")));
        // An hour after the first kills, the overall window has room again.
        assert_eq!(
            g.judge(&decision("d", "late", T0 + HOUR_MS + 130_000)).0,
            Verdict::Pass
        );
    }

    #[test]
    fn alerts_and_dry_runs_pass_uncounted() {
        let mut g = guard("per_rule: { per_minute: 1 }\n");
        let mut d = decision("r", "u", T0);
        d.mode = "dry_run".into();
        assert_eq!(g.judge(&d).0, Verdict::Pass);
        assert_eq!(g.judge(&d).0, Verdict::Pass);
        assert_eq!(g.judge(&decision("r", "u", T0)).0, Verdict::Pass);
    }

    #[test]
    fn limits_of_zero_and_a_bare_star_are_config_errors() {
        let spec: GuardSpec =
            serde_saphyr::from_str("never_kill: ['*']\nper_rule: { per_minute: 0 }\n").unwrap();
        assert_eq!(GuardSettings::build(spec).unwrap_err().len(), 2);
    }
}
