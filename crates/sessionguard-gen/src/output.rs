//! Where a run goes: the records to a file or stdout (plain or gzip), the ground truth beside
//! them, the summary on stderr. What `sessionguard gen` does once its flags are read.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{generate, Config, Summary, Truth};

/// The files of a run.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The records; `None` writes them to stdout.
    pub records: Option<PathBuf>,
    /// The ground truth; `None` puts it beside the records (`<records>.truth.jsonl`), or
    /// nowhere when they go to stdout.
    pub truth: Option<PathBuf>,
    /// gzip the records (level 1).
    pub gzip: bool,
    /// No summary on stderr.
    pub quiet: bool,
}

/// Generates `cfg` into `output`. A reader of stdout that stops early (`| head`) ends the run
/// quietly.
pub fn write(cfg: &Config, output: &Output) -> Result<()> {
    let truth_path: Option<PathBuf> = output.truth.clone().or_else(|| {
        output.records.as_ref().map(|o| {
            let mut p = o.clone().into_os_string();
            p.push(".truth.jsonl");
            PathBuf::from(p)
        })
    });
    let (summary, truth) = match &output.records {
        Some(path) => {
            // The output's directory is made when missing, as `--out target/bench/x.jsonl`
            // in a fresh checkout expects.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the directory {}", dir.display()))?;
            }
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let file = BufWriter::with_capacity(1 << 20, file);
            if output.gzip {
                let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
                let result = generate(cfg, &mut gz, None)?;
                gz.finish().context("finishing the gzip stream")?.flush()?;
                result
            } else {
                let mut file = file;
                generate(cfg, &mut file, None)?
            }
        }
        None => {
            let quiet_pipe = |e: anyhow::Error| -> Result<(Summary, Vec<Truth>)> {
                match e.downcast_ref::<io::Error>() {
                    Some(io) if io.kind() == io::ErrorKind::BrokenPipe => {
                        Ok((Summary::default(), Vec::new()))
                    }
                    _ => Err(e),
                }
            };
            let stdout = io::stdout();
            let lock = BufWriter::with_capacity(1 << 20, stdout.lock());
            let result = if output.gzip {
                let mut gz = flate2::write::GzEncoder::new(lock, flate2::Compression::fast());
                generate(cfg, &mut gz, None).and_then(|r| {
                    gz.finish()?.flush()?;
                    Ok(r)
                })
            } else {
                let mut lock = lock;
                generate(cfg, &mut lock, None)
            };
            match result.or_else(quiet_pipe)? {
                (summary, _) if summary.records == 0 && cfg.events > 0 => return Ok(()),
                result => result,
            }
        }
    };
    if let Some(path) = &truth_path {
        let mut f = BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for t in &truth {
            writeln!(f, "{}", t.to_json())?;
        }
        f.flush()?;
    }
    // `--agent-tasks`: the orchestrator's grants beside the records (`<out>.tasks.ndjson`).
    let tasks_path = output.records.as_ref().map(|o| {
        let mut p = o.clone().into_os_string();
        p.push(".tasks.ndjson");
        PathBuf::from(p)
    });
    if let (Some(path), false) = (&tasks_path, summary.tasks.is_empty()) {
        let mut f = BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        );
        for line in &summary.tasks {
            writeln!(f, "{line}")?;
        }
        f.flush()?;
    }
    if !output.quiet {
        eprint!("{}", summary.render());
        if let (Some(path), false) = (&tasks_path, summary.tasks.is_empty()) {
            eprintln!(
                "task grants: {} ({} records)",
                path.display(),
                summary.tasks.len()
            );
        }
        match &truth_path {
            Some(path) => eprintln!("ground truth: {} ({} attacks)", path.display(), truth.len()),
            None if !truth.is_empty() => {
                eprintln!("ground truth not written (stdout output; pass --truth FILE)")
            }
            None => {}
        }
    }
    Ok(())
}
