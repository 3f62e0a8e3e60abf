//! One tabular report file: RFC 4180 CSV with a header row, or JSON lines with the same columns as keys.
//! It knows cells, not records: `tables` turns each record into its cells. Formula escaping (OWASP CSV
//! injection) is applied here, to CSV only: it is for spreadsheets.

use std::fmt::{self, Display, Write as _};
use std::fs::File;
use std::io::{BufWriter, Write};

use chrono::{DateTime, Utc};

use crate::config::Format;
use crate::record::Rfc3339;

/// An open report file. Its rows are formatted through two buffers it keeps, so a row costs no
/// allocation once the buffers have grown to the longest cell and line.
pub struct Table<W: Write = File> {
    out: Out<W>,
    columns: &'static [&'static str],
    escape: bool,
    cell: String,
    line: Vec<u8>,
}

enum Out<W: Write> {
    Csv(Box<csv::Writer<BufWriter<W>>>),
    Jsonl(BufWriter<W>),
}

impl Table<Box<dyn Write>> {
    /// A table written to any writer (stdout), with its header and formula escaping.
    pub fn to_writer(
        w: Box<dyn Write>,
        format: Format,
        columns: &'static [&'static str],
    ) -> std::io::Result<Self> {
        Table::with(w, format, columns, true, true)
    }
}

impl Table<File> {
    /// A report over `file`: new (the header is written) or appended to (`header` false).
    pub fn new(
        file: File,
        format: Format,
        columns: &'static [&'static str],
        escape: bool,
        header: bool,
    ) -> std::io::Result<Table> {
        Table::with(file, format, columns, escape, header)
    }

    /// The file underneath (after a flush), to cut it back to its last complete row on a failure.
    pub fn file(&self) -> &File {
        match &self.out {
            Out::Csv(w) => w.get_ref().get_ref(),
            Out::Jsonl(out) => out.get_ref(),
        }
    }
}

impl<W: Write> Table<W> {
    fn with(
        w: W,
        format: Format,
        columns: &'static [&'static str],
        escape: bool,
        header: bool,
    ) -> std::io::Result<Table<W>> {
        let buf = BufWriter::with_capacity(64 * 1024, w);
        let out = match format {
            Format::Csv => Out::Csv(Box::new(
                csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(buf),
            )),
            Format::Jsonl => Out::Jsonl(buf),
        };
        let mut t = Table {
            out,
            columns,
            escape: escape && format == Format::Csv,
            cell: String::new(),
            line: Vec::new(),
        };
        if header {
            if let Out::Csv(w) = &mut t.out {
                w.write_record(columns)?;
            }
        }
        Ok(t)
    }

    /// One row, its cells in the columns' order.
    pub fn row(&mut self, cells: &[&dyn Display]) -> std::io::Result<()> {
        debug_assert_eq!(cells.len(), self.columns.len());
        match &mut self.out {
            Out::Csv(w) => {
                for cell in cells {
                    self.cell.clear();
                    let _ = write!(self.cell, "{cell}");
                    if self.escape && needs_escape(&self.cell) {
                        self.cell.insert(0, '\'');
                    }
                    w.write_field(&self.cell)?;
                }
                // An empty record ends the one whose fields were written above.
                w.write_record(None::<&[u8]>)?;
            }
            Out::Jsonl(out) => {
                // The columns in the CSV's order (a JSON map would sort them).
                self.line.clear();
                self.line.push(b'{');
                for (i, (c, v)) in self.columns.iter().zip(cells).enumerate() {
                    if i > 0 {
                        self.line.push(b',');
                    }
                    self.cell.clear();
                    let _ = write!(self.cell, "{v}");
                    serde_json::to_writer(&mut self.line, c)?;
                    self.line.push(b':');
                    serde_json::to_writer(&mut self.line, self.cell.as_str())?;
                }
                self.line.extend_from_slice(b"}\n");
                out.write_all(&self.line)?;
            }
        }
        Ok(())
    }

    /// Write out everything buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Out::Csv(w) => w.flush(),
            Out::Jsonl(out) => out.flush(),
        }
    }
}

/// Whether a spreadsheet would run the cell as a formula (OWASP "CSV injection").
fn needs_escape(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// A cell as it was before `escape_formula`, for reading a CSV report back. (IAM names cannot hold a
/// quote, so a quote before a formula character is the escape's.)
pub fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_escape(rest) => rest,
        _ => cell,
    }
}

/// Prefix a cell that a spreadsheet would run as a formula with `'`.
pub fn escape_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    if needs_escape(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// An optional value: empty when absent.
pub struct Opt<T>(pub Option<T>);

impl<T: Display> Display for Opt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => Ok(()),
        }
    }
}

/// A timestamp, or `absent` when there is none.
pub struct Time<'a>(pub Option<&'a DateTime<Utc>>, pub &'static str);

impl Display for Time<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => Rfc3339(t).fmt(f),
            None => f.write_str(self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_get_a_quote() {
        for cell in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(escape_formula(cell), format!("'{cell}"));
        }
        for cell in ["alice", "", "N/A", "2026-03-05T15:30:22Z", "a=b", "ünïcode"] {
            assert_eq!(escape_formula(cell), cell);
        }
        for cell in ["=SUM(A1)", "+svc-4", "'quoted", "plain"] {
            assert_eq!(unescape_formula(&escape_formula(cell)), cell);
        }
    }

    #[test]
    fn jsonl_keeps_the_columns_order_and_never_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut t = Table::new(
            File::create(&path).unwrap(),
            Format::Jsonl,
            &["z", "a"],
            true,
            true,
        )
        .unwrap();
        t.row(&[&"=1", &"x\"y"]).unwrap();
        t.flush().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"z\":\"=1\",\"a\":\"x\\\"y\"}\n"
        );
    }
}
