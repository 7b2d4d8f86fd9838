//! The archive's two Arrow schemas — `events` (the event model, one row per normalized record,
//! the record itself in `raw`) and `decisions` (one row per decision, the decision's JSON line
//! in `decision`) — and the column builders that fill them a row at a time.
//!
//! The partition columns (`date`, and `source` for events) are not in the files: they are the
//! hive directories (`date=2024-11-04/source=cloudtrail/`), as every Parquet reader expects.
//! docs/history.md lists every column; a change here is a change of the archive format, so
//! [`FORMAT_VERSION`] moves with it.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, ListBuilder, StringBuilder, TimestampMillisecondBuilder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::decision::{Decision, EvidenceOrigin};
use crate::event::{Event, Text};

/// The archive format's version, written in the manifest and in each file's key-value metadata.
pub const FORMAT_VERSION: u32 = 1;

fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The `events` table's columns, in file order.
pub static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("time", time_type(), false),
        text("event_id", true),
        text("session_key", false),
        text("session_kind", false),
        Field::new("session_derived", DataType::Boolean, false),
        text("session_issuer", true),
        Field::new("session_created_at", time_type(), true),
        Field::new("session_mfa", DataType::Boolean, true),
        text("principal_type", true),
        text("principal_id", true),
        text("principal_name", true),
        text("action", false),
        text("action_vendor", false),
        text("outcome", false),
        text("outcome_reason", true),
        text("operation", false),
        text("resource_type", true),
        text("resource_id", true),
        text("resource_name", true),
        text("resource_container", true),
        Field::new("bytes", DataType::UInt64, true),
        Field::new("records", DataType::UInt64, true),
        text("src_ip", true),
        text("via_service", true),
        Field::new("asn", DataType::UInt32, true),
        text("country", true),
        text("city", true),
        text("user_agent", true),
        text("device", true),
        Field::new("scopes", text_list(), false),
        text("agent_id", true),
        text("agent_task", true),
        text("lineage_child", true),
        text("lineage_child_role", true),
        text("lineage_source_identity", true),
        text("origin_file", false),
        Field::new("origin_line", DataType::UInt64, false),
        text("raw", false),
    ]))
});

/// The `decisions` table's columns, in file order.
pub static DECISIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        text("decision_id", false),
        Field::new("time", time_type(), false),
        text("mode", false),
        text("action", false),
        text("severity", false),
        text("rule_id", false),
        text("rule_version", false),
        text("rule_title", false),
        text("session_key", false),
        text("session_kind", false),
        text("session_parent", true),
        text("session_root", true),
        Field::new("session_chain", text_list(), false),
        text("principal_type", true),
        text("principal_id", true),
        text("principal_name", true),
        text("reason", false),
        text("aggregate", false),
        Field::new("value", DataType::Float64, true),
        text("threshold", true),
        Field::new("window_start", time_type(), false),
        Field::new("window_end", time_type(), false),
        Field::new("evidence_events", DataType::UInt64, false),
        text("evidence_first_file", true),
        Field::new("evidence_first_line", DataType::UInt64, true),
        text("decision", false),
    ]))
});

fn opt<'t>(text: &'t Option<Text<'_>>) -> Option<&'t str> {
    text.as_ref().map(|t| t.as_str())
}

/// Builders for a batch of `events` rows.
pub struct EventColumns {
    seq: UInt64Builder,
    time: TimestampMillisecondBuilder,
    strings: Vec<StringBuilder>,
    session_derived: BooleanBuilder,
    session_created_at: TimestampMillisecondBuilder,
    session_mfa: BooleanBuilder,
    bytes: UInt64Builder,
    records: UInt64Builder,
    asn: UInt32Builder,
    scopes: ListBuilder<StringBuilder>,
    origin_line: UInt64Builder,
    /// Where a value that is not text already (a session key, an address) is written before
    /// its column copies it.
    text: String,
    rows: usize,
}

/// The `raw` column being built: the records' bytes back to back and where each ends. Most of
/// a batch's bytes (about 2.5 MiB of 2,048 records), so its buffer is reused rather than
/// allocated afresh: a new buffer costs a page fault per 4 KiB the first time it is written,
/// which measured a tenth of `archive`'s time. [`RawColumn::with_buffer`] takes a buffer of a
/// written batch ([`raw_buffer_of`]).
#[derive(Debug)]
pub struct RawColumn {
    values: Vec<u8>,
    ends: Vec<i32>,
    /// A record ended past 2 GiB, where `Utf8` offsets end: the batch is refused, not cut.
    overflowed: bool,
}

/// The records of a batch, in bytes, past which its writer starts the next batch: far below
/// the 2 GiB its `i32` offsets reach, whatever the number of rows (records are at most 1 MiB
/// by default, so 2,048 of them could reach it).
pub const BATCH_RECORD_BYTES: usize = 256 << 20;

impl Default for RawColumn {
    fn default() -> Self {
        RawColumn::with_buffer(Vec::new())
    }
}

impl RawColumn {
    /// An empty column whose records go into `buffer` (emptied first).
    pub fn with_buffer(mut buffer: Vec<u8>) -> RawColumn {
        buffer.clear();
        RawColumn {
            values: buffer,
            ends: vec![0],
            overflowed: false,
        }
    }

    /// Adds a record. Its bytes are checked as UTF-8 once for the whole batch, in
    /// [`RawColumn::finish`].
    pub fn push(&mut self, record: &[u8]) {
        self.values.extend_from_slice(record);
        let end = i32::try_from(self.values.len()).unwrap_or_else(|_| {
            self.overflowed = true;
            i32::MAX
        });
        self.ends.push(end);
    }

    pub fn rows(&self) -> usize {
        self.ends.len() - 1
    }

    /// The records' bytes so far (see [`BATCH_RECORD_BYTES`]).
    pub fn bytes(&self) -> usize {
        self.values.len()
    }

    /// The record of row `row`.
    pub fn get(&self, row: usize) -> &[u8] {
        let (start, end) = (self.ends[row], self.ends[row + 1]);
        &self.values[start as usize..end as usize]
    }

    /// The records as a string array. Bytes that are not UTF-8 (which the readers reject
    /// before this) are replaced in the records that hold them rather than lost.
    fn finish(self) -> Result<ArrayRef, ArrowError> {
        if self.overflowed {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a batch's records are {} bytes, past the 2 GiB a batch can hold",
                self.values.len()
            )));
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.ends));
        let values = Buffer::from_vec(self.values);
        if let Ok(array) = StringArray::try_new(offsets.clone(), values.clone(), None) {
            return Ok(Arc::new(array));
        }
        let texts = offsets
            .windows(2)
            .map(|w| String::from_utf8_lossy(&values[w[0] as usize..w[1] as usize]));
        Ok(Arc::new(StringArray::from_iter_values(texts)))
    }
}

/// The `raw` column's byte buffer of a batch that is no longer needed (written to its file),
/// emptied, for [`EventColumns::reuse`]; `None` when the batch has no `raw` column or the
/// buffer is still shared.
pub fn raw_buffer_of(batch: RecordBatch) -> Option<Vec<u8>> {
    let raw = batch.column_by_name("raw")?.to_data();
    drop(batch);
    let values = raw.buffers().get(1)?.clone();
    drop(raw);
    let mut values = values.into_vec::<u8>().ok()?;
    values.clear();
    Some(values)
}

/// The string columns of `events`, in the order [`EventColumns::strings`] holds them.
#[derive(Clone, Copy)]
enum S {
    EventId,
    SessionKey,
    SessionKind,
    SessionIssuer,
    PrincipalType,
    PrincipalId,
    PrincipalName,
    Action,
    ActionVendor,
    Outcome,
    OutcomeReason,
    Operation,
    ResourceType,
    ResourceId,
    ResourceName,
    ResourceContainer,
    SrcIp,
    ViaService,
    Country,
    City,
    UserAgent,
    Device,
    AgentId,
    AgentTask,
    LineageChild,
    LineageChildRole,
    LineageSourceIdentity,
    OriginFile,
}
const STRING_COLUMNS: usize = S::OriginFile as usize + 1;

impl Default for EventColumns {
    fn default() -> Self {
        let utc = || TimestampMillisecondBuilder::new().with_timezone("UTC");
        EventColumns {
            seq: UInt64Builder::new(),
            time: utc(),
            strings: (0..STRING_COLUMNS).map(|_| StringBuilder::new()).collect(),
            session_derived: BooleanBuilder::new(),
            session_created_at: utc(),
            session_mfa: BooleanBuilder::new(),
            bytes: UInt64Builder::new(),
            records: UInt64Builder::new(),
            asn: UInt32Builder::new(),
            scopes: ListBuilder::new(StringBuilder::new()),
            origin_line: UInt64Builder::new(),
            text: String::new(),
            rows: 0,
        }
    }
}

impl EventColumns {
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn put(&mut self, column: S, value: Option<&str>) {
        self.strings[column as usize].append_option(value);
    }

    /// Appends `value` as text, written into [`EventColumns::text`]: no allocation per row.
    fn put_display(&mut self, column: S, value: Option<impl std::fmt::Display>) {
        use std::fmt::Write as _;
        let builder = &mut self.strings[column as usize];
        match value {
            Some(value) => {
                self.text.clear();
                let _ = write!(self.text, "{value}");
                builder.append_value(&self.text);
            }
            None => builder.append_null(),
        }
    }

    /// Adds one event but its record: its place in the archive (`seq`), where it was read
    /// from. The records go into a [`RawColumn`] beside, given to [`EventColumns::finish`].
    pub fn push(&mut self, seq: u64, event: &Event<'_>, origin: (&str, u64)) {
        self.seq.append_value(seq);
        self.time.append_value(event.time.millis());
        self.put(S::EventId, opt(&event.id));
        self.put_display(S::SessionKey, Some(&event.session.key));
        self.put(S::SessionKind, Some(event.session.kind.as_str()));
        self.session_derived.append_value(event.session.derived);
        self.put(S::SessionIssuer, opt(&event.session.issuer));
        self.session_created_at
            .append_option(event.session.created_at.map(|t| t.millis()));
        self.session_mfa.append_option(event.session.mfa);
        self.put(S::PrincipalType, opt(&event.principal.kind));
        self.put(S::PrincipalId, opt(&event.principal.id));
        self.put(S::PrincipalName, opt(&event.principal.name));
        self.put_display(S::Action, Some(&event.action));
        self.put(S::ActionVendor, Some(event.action.vendor.as_str()));
        self.put(S::Outcome, Some(event.outcome.result.as_str()));
        self.put(S::OutcomeReason, opt(&event.outcome.reason));
        self.put(S::Operation, Some(event.operation.as_str()));
        let resource = event.resource.as_ref();
        self.put(S::ResourceType, resource.and_then(|r| opt(&r.kind)));
        self.put(S::ResourceId, resource.and_then(|r| opt(&r.id)));
        self.put(S::ResourceName, resource.and_then(|r| opt(&r.name)));
        self.put(
            S::ResourceContainer,
            resource.and_then(|r| opt(&r.container)),
        );
        self.bytes.append_option(event.bytes);
        self.records.append_option(event.records);
        self.put_display(S::SrcIp, event.network.ip);
        self.put(S::ViaService, opt(&event.network.via_service));
        self.asn.append_option(event.network.asn);
        self.put(S::Country, opt(&event.network.country));
        self.put(S::City, opt(&event.network.city));
        self.put(S::UserAgent, opt(&event.client.user_agent));
        self.put(S::Device, opt(&event.client.device));
        for scope in &event.scopes {
            self.scopes.values().append_value(scope.as_str());
        }
        self.scopes.append(true);
        let agent = event.agent.as_ref();
        self.put(S::AgentId, agent.and_then(|a| opt(&a.id)));
        self.put(S::AgentTask, agent.and_then(|a| opt(&a.task)));
        let lineage = event.lineage.as_ref();
        self.put_display(S::LineageChild, lineage.and_then(|l| l.child.as_ref()));
        self.put(
            S::LineageChildRole,
            lineage.and_then(|l| opt(&l.child_role)),
        );
        self.put(
            S::LineageSourceIdentity,
            lineage.and_then(|l| opt(&l.source_identity)),
        );
        self.put(S::OriginFile, Some(origin.0));
        self.origin_line.append_value(origin.1);
        self.rows += 1;
    }

    /// The rows added so far as one batch, with their records `raw` (as many); the builders
    /// start over empty.
    pub fn finish(&mut self, raw: RawColumn) -> Result<RecordBatch, ArrowError> {
        let mut strings = self.strings.iter_mut().map(finish_keeping_capacity);
        let mut next = || strings.next().expect("one builder per string column");
        let (event_id, session_key, session_kind, session_issuer) =
            (next(), next(), next(), next());
        let (principal_type, principal_id, principal_name) = (next(), next(), next());
        let (action, action_vendor, outcome, outcome_reason, operation) =
            (next(), next(), next(), next(), next());
        let (resource_type, resource_id, resource_name, resource_container) =
            (next(), next(), next(), next());
        let (src_ip, via_service, country, city, user_agent, device) =
            (next(), next(), next(), next(), next(), next());
        let (agent_id, agent_task, child, child_role, source_identity) =
            (next(), next(), next(), next(), next());
        let origin_file = next();
        let raw = raw.finish()?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.time.finish()),
            event_id,
            session_key,
            session_kind,
            Arc::new(self.session_derived.finish()),
            session_issuer,
            Arc::new(self.session_created_at.finish()),
            Arc::new(self.session_mfa.finish()),
            principal_type,
            principal_id,
            principal_name,
            action,
            action_vendor,
            outcome,
            outcome_reason,
            operation,
            resource_type,
            resource_id,
            resource_name,
            resource_container,
            Arc::new(self.bytes.finish()),
            Arc::new(self.records.finish()),
            src_ip,
            via_service,
            Arc::new(self.asn.finish()),
            country,
            city,
            user_agent,
            device,
            Arc::new(self.scopes.finish()),
            agent_id,
            agent_task,
            child,
            child_role,
            source_identity,
            origin_file,
            Arc::new(self.origin_line.finish()),
            raw,
        ];
        self.rows = 0;
        RecordBatch::try_new(EVENTS.clone(), columns)
    }
}

/// The strings a builder holds as an array; the builder starts over with room for as many
/// rows and bytes, so the next batch is written in place instead of grown by doubling and
/// copying.
fn finish_keeping_capacity(builder: &mut StringBuilder) -> ArrayRef {
    let (rows, bytes) = (
        builder.offsets_slice().len() - 1,
        builder.values_slice().len(),
    );
    let array = Arc::new(builder.finish());
    *builder = StringBuilder::with_capacity(rows, bytes);
    array
}

/// Builders for a batch of `decisions` rows.
pub struct DecisionColumns {
    seq: UInt64Builder,
    time: TimestampMillisecondBuilder,
    window_start: TimestampMillisecondBuilder,
    window_end: TimestampMillisecondBuilder,
    strings: Vec<StringBuilder>,
    chain: ListBuilder<StringBuilder>,
    value: Float64Builder,
    evidence_events: UInt64Builder,
    evidence_first_line: UInt64Builder,
    rows: usize,
}

/// How many string columns `decisions` has.
const DECISION_STRINGS: usize = 19;

impl Default for DecisionColumns {
    fn default() -> Self {
        let utc = || TimestampMillisecondBuilder::new().with_timezone("UTC");
        DecisionColumns {
            seq: UInt64Builder::new(),
            time: utc(),
            window_start: utc(),
            window_end: utc(),
            strings: (0..DECISION_STRINGS)
                .map(|_| StringBuilder::new())
                .collect(),
            chain: ListBuilder::new(StringBuilder::new()),
            value: Float64Builder::new(),
            evidence_events: UInt64Builder::new(),
            evidence_first_line: UInt64Builder::new(),
            rows: 0,
        }
    }
}

/// A serde enum's name (`revoke_session`), as the decision's JSON writes it.
fn enum_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl DecisionColumns {
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Adds one decision: its place among the archive's decisions, and its JSON line.
    pub fn push(&mut self, seq: u64, d: &Decision, json: &str) {
        self.seq.append_value(seq);
        self.time.append_value(d.time.millis());
        self.window_start
            .append_value(d.evidence.window.start.millis());
        self.window_end.append_value(d.evidence.window.end.millis());
        let (first_file, first_line) = match d.evidence.events.first().map(|e| &e.origin) {
            Some(EvidenceOrigin::File { file, line }) => (Some(file.clone()), Some(*line)),
            Some(EvidenceOrigin::Kafka {
                topic,
                partition,
                offset,
            }) => (Some(format!("{topic}/{partition}")), Some(*offset as u64)),
            None => (None, None),
        };
        let strings: [Option<String>; DECISION_STRINGS] = [
            Some(d.decision_id.clone()),
            Some(enum_name(&d.mode)),
            Some(enum_name(&d.action)),
            Some(enum_name(&d.severity)),
            Some(d.rule.id.clone()),
            Some(d.rule.version.clone()),
            Some(d.rule.title.clone()),
            Some(d.session.key.clone()),
            Some(d.session.kind.to_owned()),
            d.session.parent.clone(),
            d.session.root.clone(),
            d.principal.kind.clone(),
            d.principal.id.clone(),
            d.principal.name.clone(),
            Some(d.evidence.reason.clone()),
            Some(d.evidence.aggregate.to_owned()),
            d.evidence.threshold.clone(),
            first_file,
            Some(json.to_owned()),
        ];
        for (builder, value) in self.strings.iter_mut().zip(strings) {
            builder.append_option(value);
        }
        for link in &d.session.chain {
            self.chain.values().append_value(link);
        }
        self.chain.append(true);
        self.value.append_option(d.evidence.value);
        self.evidence_events
            .append_value(d.evidence.events.len() as u64 + d.evidence.events_omitted);
        self.evidence_first_line.append_option(first_line);
        self.rows += 1;
    }

    /// The rows added so far as one batch; the builders start over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut s = self
            .strings
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut next = || s.next().expect("one builder per string column");
        let (id, mode, action, severity) = (next(), next(), next(), next());
        let (rule_id, rule_version, rule_title) = (next(), next(), next());
        let (key, kind, parent, root) = (next(), next(), next(), next());
        let (p_type, p_id, p_name) = (next(), next(), next());
        let (reason, aggregate, threshold, first_file, json) =
            (next(), next(), next(), next(), next());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            id,
            Arc::new(self.time.finish()),
            mode,
            action,
            severity,
            rule_id,
            rule_version,
            rule_title,
            key,
            kind,
            parent,
            root,
            Arc::new(self.chain.finish()),
            p_type,
            p_id,
            p_name,
            reason,
            aggregate,
            Arc::new(self.value.finish()),
            threshold,
            Arc::new(self.window_start.finish()),
            Arc::new(self.window_end.finish()),
            Arc::new(self.evidence_events.finish()),
            first_file,
            Arc::new(self.evidence_first_line.finish()),
            json,
        ];
        self.rows = 0;
        RecordBatch::try_new(DECISIONS.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use bumpalo::Bump;

    use super::*;
    use crate::event::normalize::Normalizer;

    const OKTA: &str = r#"{"uuid":"e1","published":"2024-11-04T08:00:00.000Z","eventType":"user.session.start","actor":{"id":"00u1","type":"User","alternateId":"ana@example.com"},"client":{"ipAddress":"198.51.100.7"},"authenticationContext":{"externalSessionId":"idx1"},"outcome":{"result":"SUCCESS"}}"#;

    fn raw_of(batch: &RecordBatch) -> Vec<String> {
        let raw = batch.column_by_name("raw").unwrap().as_string::<i32>();
        raw.iter().map(|r| r.unwrap().to_owned()).collect()
    }

    #[test]
    fn a_written_batchs_raw_buffer_carries_the_next_batch_intact() {
        let scratch = Bump::new();
        let event = Normalizer::default()
            .normalize(OKTA.as_bytes(), &scratch)
            .unwrap();
        let mut columns = EventColumns::default();
        let mut raw = RawColumn::default();
        for (seq, record) in [OKTA.as_bytes(), b"{\"bad\":\"\xff\"}"].iter().enumerate() {
            columns.push(seq as u64, &event, ("okta.jsonl", seq as u64 + 1));
            raw.push(record);
        }
        assert_eq!(raw.get(1), b"{\"bad\":\"\xff\"}");
        let first = columns.finish(raw).unwrap();
        assert_eq!(first.num_rows(), 2);
        // Bytes that are not UTF-8 are replaced, not lost with the row or the batch.
        assert_eq!(
            raw_of(&first),
            [OKTA.to_owned(), "{\"bad\":\"\u{fffd}\"}".to_owned()]
        );

        let mut columns = EventColumns::default();
        let mut raw = RawColumn::default();
        columns.push(0, &event, ("okta.jsonl", 1));
        raw.push(OKTA.as_bytes());
        let valid = columns.finish(raw).unwrap();
        let buffer = raw_buffer_of(valid).expect("the batch was the buffer's only holder");
        assert!(buffer.is_empty());
        let (room, at) = (buffer.capacity(), buffer.as_ptr());
        assert!(room >= OKTA.len());
        let mut raw = RawColumn::with_buffer(buffer);
        columns.push(1, &event, ("okta.jsonl", 2));
        raw.push(b"{}");
        let second = columns.finish(raw).unwrap();
        assert_eq!(raw_of(&second), ["{}"]);
        let raw = second.column_by_name("raw").unwrap().as_string::<i32>();
        assert_eq!(
            raw.values().as_ptr(),
            at,
            "the returned buffer was written in place"
        );
    }

    /// Columns holding one row, of the `OKTA` event.
    fn one_okta_row() -> EventColumns {
        let scratch = Bump::new();
        let event = Normalizer::default()
            .normalize(OKTA.as_bytes(), &scratch)
            .unwrap();
        let mut columns = EventColumns::default();
        columns.push(0, &event, ("okta.jsonl", 1));
        columns
    }

    #[test]
    fn a_batch_whose_records_and_rows_differ_in_number_is_refused() {
        let columns = &mut one_okta_row();
        assert!(columns.finish(RawColumn::default()).is_err());
    }

    #[test]
    fn records_past_2_gib_refuse_the_batch_rather_than_cut_a_record() {
        let columns = &mut one_okta_row();
        // What pushing past 2 GiB leaves, without the 2 GiB.
        let raw = RawColumn {
            values: OKTA.as_bytes().to_vec(),
            ends: vec![0, i32::MAX],
            overflowed: true,
        };
        let error = columns.finish(raw).unwrap_err().to_string();
        assert!(error.contains("past the 2 GiB a batch can hold"), "{error}");
    }
}
