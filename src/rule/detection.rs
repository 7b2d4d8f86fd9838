//! Sigma-style detection (placeholder API; the compiler lands next).

use bumpalo::Bump;

use crate::event::Event;

/// Reusable buffers for evaluating rules on one event; reset between events.
#[derive(Default)]
pub struct EvalCx {
    pub scratch: Bump,
    pub text: String,
}

impl EvalCx {
    pub fn reset(&mut self) {
        self.scratch.reset();
    }
}

#[derive(Debug, Default)]
pub struct Detection {}

#[derive(Debug, Default)]
pub struct Condition {}

impl Detection {
    /// True when the event matches the rule's condition and none of its exceptions.
    pub fn matches(&self, _event: &Event<'_>, _cx: &mut EvalCx) -> bool {
        false
    }

    /// Evaluates a step condition over this rule's selections; exceptions still apply.
    pub fn eval(&self, _condition: &Condition, _event: &Event<'_>, _cx: &mut EvalCx) -> bool {
        false
    }
}
