//! Where records come from. Each source yields record bytes with their origin and reports
//! framing failures as rejects, so a broken file costs only the records it breaks.

pub mod file;
