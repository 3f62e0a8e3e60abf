//! The accounts report as `--security-hub` reads and rewrites it: each account's audit status and the
//! role that worked (who imports where), then each account's `security_hub` cell filled in place (a
//! private temporary file renamed over the report).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::Value;

use crate::config::Format;
use crate::report::files::create_private;
use crate::report::table::unescape_formula;

/// An account as the accounts report left it.
pub(super) struct Row {
    pub audit_status: String,
    pub role_used: String,
}

/// Each account's status and the role that worked, from the accounts report.
pub(super) fn read_accounts(path: &Path, format: Format) -> std::io::Result<BTreeMap<String, Row>> {
    let mut out = BTreeMap::new();
    match format {
        Format::Csv => {
            let mut r = csv::Reader::from_path(path).map_err(std::io::Error::other)?;
            let headers = r.headers().map_err(std::io::Error::other)?.clone();
            let col = |name: &str| headers.iter().position(|h| h == name);
            let (Some(id), Some(status), Some(role)) =
                (col("account_id"), col("audit_status"), col("role_used"))
            else {
                return Err(std::io::Error::other(
                    "the accounts report lacks its columns",
                ));
            };
            for rec in r.records() {
                let rec = rec.map_err(std::io::Error::other)?;
                out.insert(
                    unescape_formula(&rec[id]).to_string(),
                    Row {
                        audit_status: rec[status].to_string(),
                        role_used: unescape_formula(&rec[role]).to_string(),
                    },
                );
            }
        }
        Format::Jsonl => {
            for line in BufReader::new(std::fs::File::open(path)?).lines() {
                let line = line?;
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let get = |k: &str| v[k].as_str().unwrap_or("").to_string();
                out.insert(
                    get("account_id"),
                    Row {
                        audit_status: get("audit_status"),
                        role_used: get("role_used"),
                    },
                );
            }
        }
    }
    Ok(out)
}

/// The accounts report with each account's `security_hub` cell (its last column) set, written to a
/// private temporary file then renamed over the report.
pub(super) fn rewrite_accounts(
    path: &Path,
    format: Format,
    cells: &HashMap<String, String>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("security-hub.tmp");
    let _ = std::fs::remove_file(&tmp);
    let file = create_private(&tmp)?;
    let result = (|| -> std::io::Result<()> {
        match format {
            Format::Csv => {
                let mut r = csv::Reader::from_path(path).map_err(std::io::Error::other)?;
                let mut w = csv::Writer::from_writer(std::io::BufWriter::new(&file));
                let headers = r.headers().map_err(std::io::Error::other)?.clone();
                w.write_record(&headers).map_err(std::io::Error::other)?;
                let id = headers.iter().position(|h| h == "account_id").unwrap_or(0);
                for rec in r.records() {
                    let rec = rec.map_err(std::io::Error::other)?;
                    let mut cells_out: Vec<String> = rec.iter().map(str::to_string).collect();
                    if let (Some(cell), Some(last)) =
                        (cells.get(unescape_formula(&rec[id])), cells_out.last_mut())
                    {
                        *last = cell.clone();
                    }
                    w.write_record(&cells_out).map_err(std::io::Error::other)?;
                }
                w.flush()?;
            }
            Format::Jsonl => {
                let mut w = std::io::BufWriter::new(&file);
                // The cell is the row's last field: the line is kept as written up to it.
                let key = "\"security_hub\":";
                for line in BufReader::new(std::fs::File::open(path)?).lines() {
                    let line = line?;
                    let id = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|v| v["account_id"].as_str().map(str::to_string));
                    let out = match (id.and_then(|i| cells.get(&i)), line.rfind(key)) {
                        (Some(cell), Some(at)) => format!(
                            "{}{key}{}}}",
                            &line[..at],
                            serde_json::to_string(cell).expect("JSON")
                        ),
                        _ => line,
                    };
                    writeln!(w, "{out}")?;
                }
                w.flush()?;
            }
        }
        file.sync_all()
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
