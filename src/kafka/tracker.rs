//! Per input partition: which produced messages are still unacknowledged, and which input
//! positions become safe to store once they are.
//!
//! Every message produced because of an input record takes a ticket (a sequence number) from
//! its partition's tracker. After each input record, the pipeline records a checkpoint: "the
//! next offset is `pos`; every ticket issued so far belongs to records before it". A checkpoint
//! is complete when no ticket issued before it is outstanding; the newest complete checkpoint's
//! position is the offset to store. This is "store an offset only after everything it caused is
//! delivered", with acknowledgements arriving in any order.

use std::collections::{BTreeSet, VecDeque};

/// What is known about a position of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The next offset to read: every record before it is processed.
    pub pos: i64,
    /// The oldest offset the partition's state depends on at `pos` (see the progress topic).
    pub replay_from: i64,
    /// The clocks just before `replay_from`.
    pub clocks: crate::time::ClockState,
}

pub struct Tracker {
    /// Unique per partition assignment, so acks of an earlier assignment are not mistaken.
    pub id: u64,
    next_seq: u64,
    outstanding: BTreeSet<u64>,
    /// (tickets issued before it, checkpoint), oldest first.
    checkpoints: VecDeque<(u64, Checkpoint)>,
}

impl Tracker {
    pub fn new(id: u64) -> Tracker {
        Tracker {
            id,
            next_seq: 0,
            outstanding: BTreeSet::new(),
            checkpoints: VecDeque::new(),
        }
    }

    /// A ticket for one message about to be produced.
    pub fn ticket(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding.insert(seq);
        seq
    }

    pub fn ack(&mut self, seq: u64) {
        self.outstanding.remove(&seq);
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Records a position; replaces the previous checkpoint when no ticket was issued since.
    pub fn checkpoint(&mut self, checkpoint: Checkpoint) {
        if let Some(last) = self.checkpoints.back_mut() {
            if last.0 == self.next_seq {
                last.1 = checkpoint;
                return;
            }
        }
        self.checkpoints.push_back((self.next_seq, checkpoint));
    }

    /// The newest checkpoint whose messages are all acknowledged, if one became complete.
    pub fn completed(&mut self) -> Option<Checkpoint> {
        let oldest_open = self.outstanding.first().copied().unwrap_or(u64::MAX);
        let mut done = None;
        while let Some(&(issued_before, checkpoint)) = self.checkpoints.front() {
            if issued_before > oldest_open {
                break;
            }
            done = Some(checkpoint);
            self.checkpoints.pop_front();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pos: i64) -> Checkpoint {
        Checkpoint {
            pos,
            replay_from: pos,
            clocks: crate::time::ClockState::default(),
        }
    }

    #[test]
    fn a_position_completes_only_when_everything_before_it_is_acknowledged() {
        let mut t = Tracker::new(1);
        t.checkpoint(at(1)); // a record with no output
        let a = t.ticket();
        t.checkpoint(at(2)); // a record with one decision
        let b = t.ticket();
        let c = t.ticket();
        t.checkpoint(at(3)); // a record with two
        t.checkpoint(at(4)); // one with none
        assert_eq!(t.completed(), Some(at(1)));
        t.ack(c);
        assert_eq!(t.completed(), None, "b is still out");
        t.ack(a);
        assert_eq!(t.completed(), Some(at(2)));
        t.ack(b);
        assert_eq!(t.completed(), Some(at(4)));
        assert_eq!(t.completed(), None);
    }
}
