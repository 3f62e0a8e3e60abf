//! The IAM credential report's CSV, parsed by column name (AWS may add or reorder columns): one row per
//! IAM user and one for the root user (`<root_account>`), with `N/A`, `no_information` and
//! `not_supported` understood, and user names that hold commas rejoined.

use chrono::{DateTime, Utc};

use crate::record::{LastUse, LastUsed, Password, ROOT_USER};

/// One access-key slot of a report row.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub active: bool,
    /// The key's CreateDate; `None` = no key in this slot.
    pub last_rotated: Option<DateTime<Utc>>,
    /// `None` = never used.
    pub last_used: Option<DateTime<Utc>>,
    pub region: String,
    pub service: String,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub user: String,
    pub arn: String,
    pub created: Option<DateTime<Utc>>,
    /// `None`: `not_supported` (the root user).
    pub password_enabled: Option<bool>,
    /// `None`: never (`N/A`, `no_information`).
    pub password_last_used: Option<DateTime<Utc>>,
    pub password_last_changed: Option<DateTime<Utc>>,
    pub mfa_active: bool,
    pub keys: [Slot; 2],
    /// Whether the `cert_*` columns show a signing certificate (active, or rotated once: an inactive
    /// one); `None` when the report has no such columns.
    pub certificates: Option<bool>,
}

/// A parsed report.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialReport {
    pub generated: Option<DateTime<Utc>>,
    pub root: Option<Row>,
    pub users: Vec<Row>,
}

/// A report time: RFC 3339 (`2026-03-05T15:30:22+00:00`); `N/A`, `no_information`, `not_supported` and
/// empty cells are no time.
fn time(cell: &str) -> Result<Option<DateTime<Utc>>, String> {
    match cell {
        "" | "N/A" | "no_information" | "not_supported" => Ok(None),
        t => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| format!("'{t}' is not a time ({e})")),
    }
}

fn boolean(cell: &str) -> Result<Option<bool>, String> {
    match cell {
        "true" | "TRUE" => Ok(Some(true)),
        "false" | "FALSE" => Ok(Some(false)),
        "N/A" | "not_supported" | "no_information" | "" => Ok(None),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// Parse the report's CSV by header name (AWS may add or reorder columns).
pub fn parse(
    csv_bytes: &[u8],
    generated: Option<DateTime<Utc>>,
) -> Result<CredentialReport, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(csv_bytes);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| -> Result<usize, String> {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("the report has no '{name}' column"))
    };
    let user = col("user")?;
    let arn = col("arn")?;
    let created = col("user_creation_time")?;
    let password_enabled = col("password_enabled")?;
    let password_last_used = col("password_last_used")?;
    let password_last_changed = col("password_last_changed").ok();
    let mfa_active = col("mfa_active")?;
    let mut slots = Vec::new();
    for n in 1..=2 {
        slots.push([
            col(&format!("access_key_{n}_active"))?,
            col(&format!("access_key_{n}_last_rotated"))?,
            col(&format!("access_key_{n}_last_used_date"))?,
            col(&format!("access_key_{n}_last_used_region"))?,
            col(&format!("access_key_{n}_last_used_service"))?,
        ]);
    }
    let certs: Vec<(usize, Option<usize>)> = (1..=2)
        .filter_map(|n| {
            Some((
                col(&format!("cert_{n}_active")).ok()?,
                col(&format!("cert_{n}_last_rotated")).ok(),
            ))
        })
        .collect();
    let mut report = CredentialReport {
        generated,
        root: None,
        users: Vec::new(),
    };
    for (line, record) in reader.records().enumerate() {
        let at = |e: String| format!("row {}: {e}", line + 2);
        let record = record.map_err(|e| e.to_string())?;
        let record = unsplit_name(record, headers.len(), user, arn).map_err(at)?;
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let slot = |s: &[usize; 5]| -> Result<Slot, String> {
            Ok(Slot {
                active: boolean(cell(s[0])).map_err(at)?.unwrap_or(false),
                last_rotated: time(cell(s[1])).map_err(at)?,
                last_used: time(cell(s[2])).map_err(at)?,
                region: cell(s[3]).to_string(),
                service: cell(s[4]).to_string(),
            })
        };
        let row = Row {
            user: cell(user).to_string(),
            arn: cell(arn).to_string(),
            created: time(cell(created)).map_err(at)?,
            password_enabled: boolean(cell(password_enabled)).map_err(at)?,
            password_last_used: time(cell(password_last_used)).map_err(at)?,
            password_last_changed: match password_last_changed {
                Some(i) => time(cell(i)).map_err(at)?,
                None => None,
            },
            mfa_active: boolean(cell(mfa_active)).map_err(at)?.unwrap_or(false),
            keys: [slot(&slots[0])?, slot(&slots[1])?],
            certificates: if certs.len() == 2 {
                let mut any = false;
                for (active, rotated) in &certs {
                    any |= boolean(cell(*active)).map_err(at)?.unwrap_or(false);
                    if let Some(r) = rotated {
                        any |= time(cell(*r)).map_err(at)?.is_some();
                    }
                }
                Some(any)
            } else {
                None
            },
        };
        if row.user.is_empty() {
            return Err(at("a row without a user name".into()));
        }
        if row.user == ROOT_USER {
            report.root = Some(row);
        } else {
            report.users.push(row);
        }
    }
    Ok(report)
}

/// IAM user names may hold commas (`frank,smith`), and a report writer that does not quote them splits the
/// name or the ARN that ends with it into more cells than the header has. When `user` and `arn` are the
/// first two columns, the extra cells are rejoined where the ARN then ends with the name. A row that still
/// does not fit is an error.
fn unsplit_name(
    record: csv::StringRecord,
    columns: usize,
    user: usize,
    arn: usize,
) -> Result<csv::StringRecord, String> {
    if record.len() == columns {
        return Ok(record);
    }
    let extra = record.len().saturating_sub(columns);
    if record.len() > columns && user == 0 && arn == 1 {
        let cells: Vec<&str> = record.iter().collect();
        // The name took `a` extra cells and the ARN the rest (one of them may have been quoted).
        for a in 0..=extra {
            let name = cells[..=a].join(",");
            let mut arn = cells[a + 1..=extra + 1].join(",");
            // One writer (moto) quotes the name inside the ARN: `…:user/"frank,smith"`.
            if let Some(stem) = arn.strip_suffix(&format!("/\"{name}\"")) {
                arn = format!("{stem}/{name}");
            }
            if arn.ends_with(&format!("/{name}")) {
                let mut fixed = csv::StringRecord::new();
                fixed.push_field(&name);
                fixed.push_field(&arn);
                for c in &cells[extra + 2..] {
                    fixed.push_field(c);
                }
                return Ok(fixed);
            }
        }
    }
    Err(format!(
        "{} cells where the header has {columns}",
        record.len()
    ))
}

impl Slot {
    /// The slot key's last use as of the report.
    pub fn last_use(&self, now: DateTime<Utc>) -> LastUse {
        let na = |v: &str| {
            if v.is_empty() {
                "N/A".to_string()
            } else {
                v.to_string()
            }
        };
        match self.last_used {
            Some(date) => LastUse::Used(LastUsed {
                date,
                service: na(&self.service),
                region: na(&self.region),
                days_since: (now - date).num_days(),
            }),
            None => LastUse::Never,
        }
    }
}

impl Row {
    /// Whether the user may hold a signing certificate (then ListSigningCertificates is asked).
    pub fn has_certificate(&self) -> bool {
        self.certificates != Some(false)
    }

    pub fn password(&self) -> Password {
        match self.password_enabled {
            Some(true) => Password::Configured,
            Some(false) => Password::NotConfigured,
            None => Password::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn parses_the_root_row_and_the_special_values() {
        let text = format!(
            "{HEADER}\n\
             <root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,2026-02-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             alice,arn:aws:iam::111122223333:user/alice,2021-05-05T08:00:00+00:00,true,no_information,2021-05-05T08:00:00+00:00,N/A,false,true,2025-01-02T03:04:05+00:00,2026-03-01T00:00:00+00:00,eu-west-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let r = parse(text.as_bytes(), None).unwrap();
        let root = r.root.unwrap();
        assert_eq!(root.password_enabled, None);
        assert!(root.mfa_active);
        assert_eq!(root.keys[0].last_rotated, None);
        assert_eq!(r.users.len(), 1);
        let alice = &r.users[0];
        assert_eq!(alice.password_enabled, Some(true));
        assert_eq!(alice.password_last_used, None, "no_information is never");
        assert!(alice.keys[0].active);
        assert_eq!(
            alice.keys[0].last_rotated.unwrap().to_rfc3339(),
            "2025-01-02T03:04:05+00:00"
        );
        assert_eq!(alice.keys[0].service, "s3");
        assert_eq!(alice.keys[1].last_rotated, None);
    }

    #[test]
    fn columns_are_found_by_name_and_bad_cells_are_errors() {
        // Reordered columns still parse.
        let text = "arn,user,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service\n\
                    arn:aws:iam::1:user/bob,bob,2021-05-05T08:00:00+00:00,false,N/A,true,false,N/A,N/A,N/A,N/A,true,2024-01-01T00:00:00+00:00,N/A,N/A,N/A\n";
        let r = parse(text.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].user, "bob");
        assert!(r.users[0].keys[0].active);
        assert_eq!(r.users[0].keys[0].last_used, None);
        assert_eq!(
            parse(b"user,arn\nx,y\n", None).unwrap_err(),
            "the report has no 'user_creation_time' column"
        );
        // An unquoted name with commas splits the name and the ARN; both are rejoined.
        let split = text.replace(
            "arn:aws:iam::1:user/bob,bob,",
            "arn:aws:iam::1:user/bob,smith,bob,smith,",
        );
        let split = split.replacen("arn,user,", "user,arn,", 1);
        let r = parse(split.as_bytes(), None).unwrap_err();
        assert!(r.contains("cells where the header has"), "{r}");
        let quoted_order = "user,arn,user_creation_time,password_enabled,password_last_used,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service\n\
                            frank,smith,arn:aws:iam::1:user/frank,smith,2021-05-05T08:00:00+00:00,true,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A\n";
        let moto_style = quoted_order.replace(
            "frank,smith,arn:aws:iam::1:user/frank,smith,",
            "\"frank,smith\",arn:aws:iam::1:user/\"frank,smith\",",
        );
        let r = parse(moto_style.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].arn, "arn:aws:iam::1:user/frank,smith");
        let r = parse(quoted_order.as_bytes(), None).unwrap();
        assert_eq!(r.users[0].user, "frank,smith");
        assert_eq!(r.users[0].arn, "arn:aws:iam::1:user/frank,smith");
        assert_eq!(r.users[0].password_enabled, Some(true));
        let bad = text.replace("2021-05-05T08:00:00+00:00", "yesterday");
        assert!(parse(bad.as_bytes(), None)
            .unwrap_err()
            .starts_with("row 2: 'yesterday' is not a time"));
    }
}
