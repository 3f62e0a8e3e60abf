//! Account snapshots (`record::snapshot`) as the writer and the comparison need them: built from an
//! account's records as it closes (`Builder`), or read back from a run's report files and grouped by
//! account (`GroupedRun`). A run's rows are interleaved across accounts in its files, so reading them back
//! goes through a private scratch directory: the rows are spread over bucket files by account, then each
//! bucket is grouped in memory and written as one line per account, with an index of where each account's
//! line is. Memory holds one bucket and the index, whatever the size of the organization.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Format, Values};
use crate::record::snapshot::{AccountSnapshot, FindingHistory, KeySnapshot, UserSnapshot};
use crate::record::{Flags, KeyRow, Record, UserRow};

use super::files::{create_private, OutputPaths};
use super::resume::Rows;
use super::tables::{key_cells, user_cells};

/// Collects each account's users and keys until its closing row, then hands over its snapshot.
pub struct Builder {
    open: HashMap<String, (Vec<UserSnapshot>, Vec<KeySnapshot>)>,
    values: Values,
}

impl Builder {
    pub fn new(values: Values) -> Builder {
        Builder {
            open: HashMap::new(),
            values,
        }
    }

    /// Take one record; an account's closing row gives its snapshot.
    pub fn record(&mut self, r: &Record) -> Option<AccountSnapshot> {
        match r {
            Record::Key(k) => {
                let entry = self.open.entry(k.account_id.clone()).or_default();
                entry.1.push(key_snapshot(k, self.values));
                None
            }
            Record::User(u) => {
                let entry = self.open.entry(u.account_id.clone()).or_default();
                entry.0.push(user_snapshot(u, self.values));
                None
            }
            Record::Event(_) | Record::Credential(_) | Record::KeyHistory(_) | Record::End(_) => {
                None
            }
            Record::Account(a) => {
                let (users, keys) = self.open.remove(&a.account_id).unwrap_or_default();
                Some(AccountSnapshot::from_rows(a, users, keys))
            }
        }
    }
}

fn key_snapshot(k: &KeyRow, values: Values) -> KeySnapshot {
    let cells = key_cells(k, values);
    KeySnapshot {
        id: k.access_key_id.clone(),
        user: k.username.clone(),
        status: k.status.clone(),
        created: cells.created,
        last_used: cells.last_used,
        key_age_days: cells.key_age_days,
        flags: k.key_risk,
    }
}

fn user_snapshot(u: &UserRow, values: Values) -> UserSnapshot {
    let cells = user_cells(u, values);
    UserSnapshot {
        name: u.username.clone(),
        arn: u.arn.clone(),
        password_enabled: cells.password_enabled,
        mfa_type: cells.mfa_type,
        last_activity: cells.last_activity,
        flags: u.user_risk.union(u.unlisted_key_risk),
    }
}

/// How many bucket files a run is spread over while it is grouped.
const BUCKETS: u64 = 64;

fn bucket_of(account: &str) -> u64 {
    // DefaultHasher::new() has fixed keys: the same account goes to the same bucket in every run.
    let mut h = DefaultHasher::new();
    account.hash(&mut h);
    h.finish() % BUCKETS
}

/// One report row in a bucket file.
#[derive(Serialize, Deserialize)]
enum Line {
    Account(AccountSnapshot),
    User {
        account: String,
        user: UserSnapshot,
        risk: Flags,
    },
    Key {
        account: String,
        key: KeySnapshot,
    },
    History(FindingHistory),
}

/// A private scratch directory, removed with what it holds when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new private (0700) directory in `dir`.
    pub fn new(dir: &Path, what: &str) -> std::io::Result<Scratch> {
        for n in 0..1000u32 {
            let path = dir.join(format!(".iam-audit-{what}-{}-{n}", std::process::id()));
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            match b.create(&path) {
                Ok(()) => return Ok(Scratch(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free scratch directory name"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A run read back from its files, one snapshot per account, by id.
pub struct GroupedRun {
    file: File,
    index: HashMap<String, (u64, u32)>,
    /// Accounts its history carries that its accounts report does not have (left out by a filter, or
    /// not reached): their history only.
    history_only: HashMap<String, (u64, u32)>,
    _scratch: Scratch,
}

impl GroupedRun {
    /// Read a run's accounts, users and keys reports and group them by account. Accounts without a row in
    /// the accounts report (an interrupted run) are left out: nothing is known of them.
    pub fn read(
        paths: &OutputPaths,
        format: Format,
        scratch_in: &Path,
    ) -> std::io::Result<GroupedRun> {
        let scratch = Scratch::new(scratch_in, "run")?;
        let mut buckets: Vec<BufWriter<File>> = (0..BUCKETS)
            .map(|b| {
                create_private(&scratch.path().join(format!("bucket-{b}"))).map(BufWriter::new)
            })
            .collect::<std::io::Result<_>>()?;
        let mut put = |account: &str, line: &Line| -> std::io::Result<()> {
            let w = &mut buckets[bucket_of(account) as usize];
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")
        };
        scatter(paths, format, &mut put)?;
        for b in &mut buckets {
            b.flush()?;
        }
        drop(buckets);
        // Group each bucket and write one line per account.
        let grouped_path = scratch.path().join("grouped");
        let mut out = BufWriter::new(create_private(&grouped_path)?);
        let (index, history_only) = group(scratch.path(), &mut out)?;
        out.flush()?;
        drop(out);
        Ok(GroupedRun {
            file: File::open(&grouped_path)?,
            index,
            history_only,
            _scratch: scratch,
        })
    }

    fn read_at(&mut self, at: Option<(u64, u32)>) -> std::io::Result<Option<AccountSnapshot>> {
        let Some((offset, len)) = at else {
            return Ok(None);
        };
        let mut buf = vec![0u8; len as usize];
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(&mut buf)?;
        Ok(Some(serde_json::from_slice(&buf)?))
    }

    /// The snapshot of one account, if the run had a closing row for it.
    pub fn get(&mut self, id: &str) -> std::io::Result<Option<AccountSnapshot>> {
        let at = self.index.get(id).copied();
        self.read_at(at)
    }

    /// The history the run carried for an account it did not close (empty when none).
    pub fn history_only(&mut self, id: &str) -> std::io::Result<Vec<FindingHistory>> {
        let at = self.history_only.get(id).copied();
        Ok(self.read_at(at)?.map(|a| a.history).unwrap_or_default())
    }

    /// Every account the run closed, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }

    /// The accounts whose history alone the run carried.
    pub fn history_only_ids(&self) -> impl Iterator<Item = &String> {
        self.history_only.keys()
    }
}

/// The accounts a resumed run finished before it stopped, from its files (kept by `prepare_resume`): each
/// one's closing row as the accounts report has it (the cells the summary page shows) and its snapshot,
/// one account at a time, for the outputs that summarize the whole run.
pub fn replay_done(
    paths: &OutputPaths,
    format: Format,
    scratch_in: &Path,
    mut each: impl FnMut(&crate::record::AccountRow, Option<&AccountSnapshot>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use crate::record::{AccountRow, AuditStatus, Flag};
    let mut grouped = GroupedRun::read(paths, format, scratch_in)?;
    let mut fields = vec![
        "account_id",
        "account_name",
        "account_status",
        "audit_status",
        "users",
        "keys",
        "error",
        "duration_s",
        "ou_path",
    ];
    fields.extend_from_slice(super::columns::flag_columns());
    let mut rows = Vec::new();
    super::resume::for_each_row(&paths.accounts, format, &fields, Rows::Whole, |r| {
        rows.push(r);
        Ok(())
    })?;
    for r in rows {
        let status = match r[3].as_str() {
            "audited" => AuditStatus::Audited,
            "not_active" => AuditStatus::NotActive,
            // prepare_resume kept only the finished accounts.
            _ => continue,
        };
        let mut row = AccountRow::unaudited(&r[0], &r[1], &r[2], &r[8], status, r[6].clone());
        row.users = r[4].parse().unwrap_or(0);
        row.keys = r[5].parse().unwrap_or(0);
        row.duration_s = r[7].parse().unwrap_or(0.0);
        for (i, n) in row.flag_counts.iter_mut().enumerate().take(Flag::COUNT) {
            *n = r[9 + i].parse().unwrap_or(0);
        }
        let snapshot = grouped.get(&row.account_id)?;
        each(&row, snapshot.as_ref())?;
    }
    Ok(())
}

/// Every row of the run's accounts, users and keys reports, and its history, each to `put` with its
/// account: the first pass of `GroupedRun::read`.
fn scatter(
    paths: &OutputPaths,
    format: Format,
    put: &mut impl FnMut(&str, &Line) -> std::io::Result<()>,
) -> std::io::Result<()> {
    super::resume::for_each_row(
        &paths.accounts,
        format,
        &[
            "account_id",
            "account_name",
            "account_status",
            "audit_status",
            "ou_path",
            "error",
            "iam_status",
            "cloudtrail_status",
        ],
        Rows::Whole,
        |c| {
            let a = AccountSnapshot {
                id: c[0].clone(),
                name: c[1].clone(),
                status: c[2].clone(),
                audit_status: c[3].clone(),
                ou_path: c[4].clone(),
                error: c[5].clone(),
                iam_status: c[6].clone(),
                cloudtrail_status: c[7].clone(),
                ..AccountSnapshot::default()
            };
            put(&c[0].clone(), &Line::Account(a))
        },
    )?;
    super::resume::for_each_row(
        &paths.users,
        format,
        &[
            "account_id",
            "username",
            "arn",
            "password_enabled",
            "mfa_type",
            "last_activity",
            "risk",
        ],
        Rows::Whole,
        |c| {
            let user = UserSnapshot {
                name: c[1].clone(),
                arn: c[2].clone(),
                password_enabled: c[3].clone(),
                mfa_type: c[4].clone(),
                last_activity: c[5].clone(),
                flags: Flags::default(),
            };
            put(
                &c[0],
                &Line::User {
                    account: c[0].clone(),
                    user,
                    risk: Flags::parse(&c[6]),
                },
            )
        },
    )?;
    super::resume::for_each_row(
        &paths.keys,
        format,
        &[
            "account_id",
            "access_key_id",
            "username",
            "status",
            "created_date",
            "last_used_date",
            "key_age_days",
            "risk",
        ],
        Rows::Whole,
        |c| {
            let key = KeySnapshot {
                id: c[1].clone(),
                user: c[2].clone(),
                status: c[3].clone(),
                created: c[4].clone(),
                last_used: c[5].clone(),
                key_age_days: c[6].clone(),
                flags: KeySnapshot::own_flags(Flags::parse(&c[7])),
            };
            put(
                &c[0],
                &Line::Key {
                    account: c[0].clone(),
                    key,
                },
            )
        },
    )?;
    // The history the run left, where it has one (runs of older versions have none).
    if paths.history.exists() {
        let reader = BufReader::new(super::resume::trusted_history(&paths.history)?);
        for (n, line) in reader.lines().enumerate() {
            let entry: FindingHistory = serde_json::from_str(&line?).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", paths.history.display(), n + 1),
                )
            })?;
            let account = entry.account.clone();
            put(&account, &Line::History(entry))?;
        }
    }
    Ok(())
}

/// Where each account's line is in the grouped file: its offset and length.
type Index = HashMap<String, (u64, u32)>;

/// The second pass: each bucket of `scratch` read back, grouped into one snapshot per account, written to
/// `out` one line each; the index of the accounts, and of those that have only a history.
fn group(scratch: &Path, out: &mut BufWriter<File>) -> std::io::Result<(Index, Index)> {
    let mut index = HashMap::new();
    let mut history_only = HashMap::new();
    let mut offset = 0u64;
    for b in 0..BUCKETS {
        let path = scratch.join(format!("bucket-{b}"));
        let mut accounts: HashMap<String, AccountSnapshot> = HashMap::new();
        let mut users: HashMap<String, Vec<(UserSnapshot, Flags)>> = HashMap::new();
        let mut keys: HashMap<String, Vec<KeySnapshot>> = HashMap::new();
        let mut histories: HashMap<String, Vec<FindingHistory>> = HashMap::new();
        for line in BufReader::new(File::open(&path)?).lines() {
            match serde_json::from_str::<Line>(&line?)? {
                Line::Account(a) => {
                    accounts.insert(a.id.clone(), a);
                }
                Line::User {
                    account,
                    user,
                    risk,
                } => users.entry(account).or_default().push((user, risk)),
                Line::Key { account, key } => keys.entry(account).or_default().push(key),
                Line::History(e) => histories.entry(e.account.clone()).or_default().push(e),
            }
        }
        std::fs::remove_file(&path)?;
        let mut ids: Vec<String> = accounts.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let mut a = accounts.remove(&id).expect("listed");
            a.keys = keys.remove(&id).unwrap_or_default();
            a.users = users
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|(mut u, risk)| {
                    let of_rows: Flags = a
                        .keys
                        .iter()
                        .filter(|k| k.user == u.name)
                        .fold(Flags::default(), |f, k| f.union(k.flags));
                    u.flags = UserSnapshot::own_flags(risk, of_rows);
                    u
                })
                .collect();
            a.history = histories.remove(&id).unwrap_or_default();
            let mut line = serde_json::to_vec(&a)?;
            line.push(b'\n');
            out.write_all(&line)?;
            index.insert(id, (offset, line.len() as u32));
            offset += line.len() as u64;
        }
        let mut rest: Vec<(String, Vec<FindingHistory>)> = histories.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, history) in rest {
            let a = AccountSnapshot {
                id: id.clone(),
                history,
                ..AccountSnapshot::default()
            };
            let mut line = serde_json::to_vec(&a)?;
            line.push(b'\n');
            out.write_all(&line)?;
            history_only.insert(id, (offset, line.len() as u32));
            offset += line.len() as u64;
        }
    }
    Ok((index, history_only))
}
