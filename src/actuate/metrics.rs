//! `actuate`'s metrics, rendered as Prometheus text on `/metrics`: deliveries by receiver and
//! outcome, retries, held-back decisions, guard trips, and two latency histograms — delivery
//! (first attempt to answer) and end to end (decision time to answer). Labels are receiver
//! names, outcomes and rule ids: never a session or a user.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use hdrhistogram::Histogram;

pub mod names {
    pub const DELIVERIES: &str = "sessionguard_actuate_deliveries_total";
    pub const RETRIES: &str = "sessionguard_actuate_retries_total";
    pub const HELD_BACK: &str = "sessionguard_actuate_held_back_total";
    pub const TRIPS: &str = "sessionguard_actuate_guard_trips_total";
    pub const REJECTED: &str = "sessionguard_actuate_rejected_lines_total";
    pub const DELIVERY_LATENCY: &str = "sessionguard_actuate_delivery_latency_seconds";
    pub const END_TO_END: &str = "sessionguard_actuate_decision_to_ack_seconds";
}

pub struct Metrics {
    inner: Mutex<Inner>,
}

struct Inner {
    deliveries: BTreeMap<(String, &'static str), u64>,
    retries: BTreeMap<String, u64>,
    held_back: u64,
    trips: BTreeMap<String, u64>,
    rejected: u64,
    /// Microseconds, 1 µs to 1 h.
    delivery: Histogram<u64>,
    /// Milliseconds, 1 ms to 30 days.
    end_to_end: Histogram<u64>,
}

/// Latency quantiles of one histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                deliveries: BTreeMap::new(),
                retries: BTreeMap::new(),
                held_back: 0,
                trips: BTreeMap::new(),
                rejected: 0,
                delivery: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("fixed bounds"),
                end_to_end: Histogram::new_with_bounds(1, 30 * 86_400_000, 3)
                    .expect("fixed bounds"),
            }),
        }
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn delivery(
        &self,
        receiver: &str,
        outcome: &'static str,
        micros: u64,
        end_to_end_ms: Option<i64>,
    ) {
        let mut m = self.lock();
        *m.deliveries
            .entry((receiver.to_owned(), outcome))
            .or_default() += 1;
        m.delivery.saturating_record(micros.max(1));
        if let Some(ms) = end_to_end_ms.filter(|ms| *ms >= 0) {
            m.end_to_end.saturating_record((ms as u64).max(1));
        }
    }

    pub fn retry(&self, receiver: &str) {
        *self.lock().retries.entry(receiver.to_owned()).or_default() += 1;
    }

    pub fn held_back(&self) {
        self.lock().held_back += 1;
    }

    pub fn trip(&self, rule: &str) {
        *self.lock().trips.entry(rule.to_owned()).or_default() += 1;
    }

    pub fn rejected(&self) {
        self.lock().rejected += 1;
    }

    pub fn delivery_latency(&self) -> Quantiles {
        let m = self.lock();
        let h = &m.delivery;
        Quantiles {
            count: h.len(),
            p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }

    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE {} counter", names::DELIVERIES);
        for ((receiver, outcome), n) in &m.deliveries {
            let _ = writeln!(
                out,
                "{}{{receiver=\"{}\",outcome=\"{outcome}\"}} {n}",
                names::DELIVERIES,
                escape(receiver)
            );
        }
        let _ = writeln!(out, "# TYPE {} counter", names::RETRIES);
        for (receiver, n) in &m.retries {
            let _ = writeln!(
                out,
                "{}{{receiver=\"{}\"}} {n}",
                names::RETRIES,
                escape(receiver)
            );
        }
        let _ = writeln!(
            out,
            "# TYPE {} counter\n{} {}",
            names::HELD_BACK,
            names::HELD_BACK,
            m.held_back
        );
        let _ = writeln!(out, "# TYPE {} counter", names::TRIPS);
        for (rule, n) in &m.trips {
            let _ = writeln!(out, "{}{{rule=\"{}\"}} {n}", names::TRIPS, escape(rule));
        }
        let _ = writeln!(
            out,
            "# TYPE {} counter\n{} {}",
            names::REJECTED,
            names::REJECTED,
            m.rejected
        );
        for (name, h, scale) in [
            (names::DELIVERY_LATENCY, &m.delivery, 1e-6),
            (names::END_TO_END, &m.end_to_end, 1e-3),
        ] {
            let _ = writeln!(out, "# TYPE {name} summary");
            for q in [0.5, 0.9, 0.99] {
                let v = if h.is_empty() {
                    0.0
                } else {
                    h.value_at_quantile(q) as f64 * scale
                };
                let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {v}");
            }
            let _ = writeln!(out, "{name}_count {}", h.len());
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
