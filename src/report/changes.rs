//! `changes_<stamp>.csv` (or `.jsonl`): what changed since the earlier run, one row per change, written as
//! each account closes (see `compare` for what counts as a change).

use std::fs::File;

use crate::record::snapshot::AccountSnapshot;

use super::compare::AccountChanges;
use super::table::Table;
use super::{Output, RunEnd};

pub struct ChangesOutput {
    table: Table,
}

impl ChangesOutput {
    pub fn new(table: Table) -> ChangesOutput {
        ChangesOutput { table }
    }

    fn rows(&mut self, changes: &AccountChanges) -> std::io::Result<()> {
        for c in &changes.changes {
            let cells = c.cells();
            let cells: Vec<&dyn std::fmt::Display> =
                cells.iter().map(|c| c as &dyn std::fmt::Display).collect();
            self.table.row(&cells)?;
        }
        Ok(())
    }
}

impl Output for ChangesOutput {
    fn account_closed(
        &mut self,
        _snapshot: &AccountSnapshot,
        changes: Option<&AccountChanges>,
    ) -> std::io::Result<()> {
        match changes {
            Some(c) => self.rows(c),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.table.flush()
    }

    fn files(&self) -> Vec<&File> {
        vec![self.table.file()]
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        if let Some(n) = &end.digest.not_compared {
            self.rows(&AccountChanges {
                changes: vec![n.change()],
                ..AccountChanges::default()
            })?;
        }
        for gone in end.removed {
            self.rows(gone)?;
        }
        self.table.flush()
    }
}
