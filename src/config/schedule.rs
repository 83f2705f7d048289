//! `Schedule`: cron expressions in crontab's dialect, adapted onto the
//! `cron` crate (docs/CONFIG.md, Schedules).
//!
//! Why not `croner`, which speaks crontab itself (evaluated with croner 4.0.3,
//! December 2026)? It reads every tick our tests expect (5 fields, seconds,
//! years, 0 and 7 as Sunday, day of month OR day of week) and would delete
//! about 100 lines here, but its errors do not name the field ("Number out
//! of bounds" where we say "day of week `8` is out of range 0-7"), it lacks
//! `@midnight` and cronie's `1/2` steps, so an adapter would stay, and it
//! brings three proc-macro crates (derive_builder, darling, strum).

use std::fmt;

/// A cron schedule: 5-field crontab, 6/7-field with seconds, or `@hourly` etc.
///
/// The 5-field form follows crontab(5): day of week 0-7 with Sunday as 0 or
/// 7, and when both day of month and day of week are restricted a day
/// matching either fires. The 6/7-field form is the `cron` crate's syntax as
/// is; there, numeric days of week are refused because that dialect counts
/// 1 as Sunday (Quartz) where crontab counts it as Monday: names are
/// unambiguous.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: cron::Schedule,
    /// Crontab's day-of-week half when both day fields are restricted:
    /// the `cron` crate ANDs them, crontab ORs them.
    or_days_of_week: Option<cron::Schedule>,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (main, or_days_of_week) = match fields.as_slice() {
            [] => return Err("empty schedule".to_string()),
            [word] if word.starts_with('@') => (shorthand(word)?.to_string(), None),
            [minute, hour, dom, month, dow] => {
                let days_of_week = crontab_days_of_week(dow)?;
                if restricted(dom) && restricted(dow) {
                    (
                        format!("0 {minute} {hour} {dom} {month} *"),
                        Some(format!("0 {minute} {hour} * {month} {days_of_week}")),
                    )
                } else {
                    (
                        format!("0 {minute} {hour} {dom} {month} {days_of_week}"),
                        None,
                    )
                }
            }
            [_, _, _, _, _, dow] | [_, _, _, _, _, dow, _] => {
                refuse_numeric_days_of_week(dow)?;
                (fields.join(" "), None)
            }
            _ => {
                return Err(format!(
                    "expected 5 fields (minute hour day month weekday), 6 or 7 with seconds first, or @hourly etc.; found {}",
                    fields.len()
                ))
            }
        };
        let schedule = Schedule {
            text: text.to_string(),
            cron: compile_cron(&main)?,
            or_days_of_week: or_days_of_week.as_deref().map(compile_cron).transpose()?,
        };
        if schedule.next_after(chrono::Utc::now()).is_none() {
            return Err("it never fires".to_string());
        }
        Ok(schedule)
    }

    /// As written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `after`.
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let main = self.cron.after(&after).next();
        let or = self
            .or_days_of_week
            .as_ref()
            .and_then(|cron| cron.after(&after).next());
        match (main, or) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A schedule in the file reads itself; toml positions its error at the
/// value, so `FILE:LINE:COL` needs no span kept by hand.
impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schedule::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid cron schedule {text:?}: {e}")))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// crontab(5) nicknames, as 6-field expressions.
fn shorthand(word: &str) -> Result<&'static str, String> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "@hourly" => "0 0 * * * *",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@weekly" => "0 0 0 * * SUN",
        "@monthly" => "0 0 0 1 * *",
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        _ => {
            return Err(format!(
                "unknown `{word}`, expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"
            ))
        }
    })
}

/// crontab(5) treats a day field starting with `*` as unrestricted.
fn restricted(field: &str) -> bool {
    !(field.starts_with('*') || field == "?")
}

/// A crontab day-of-week field (0-7, Sunday is 0 or 7, names, ranges,
/// steps) as an explicit list in the `cron` crate's numbering (Sunday = 1).
fn crontab_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => match step.parse::<usize>() {
                Ok(step) if step > 0 => (base, Some(step)),
                _ => return Err(format!("invalid step `{step}` in day of week")),
            },
            None => (item, None),
        };
        let (first, last) = if base == "*" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, mut b) = (day_of_week(a)?, day_of_week(b)?);
            // `fri-sun`: Sunday closes the week as 7.
            if b == 0 && a > 0 {
                b = 7;
            }
            if a > b {
                return Err(format!("day-of-week range `{base}` runs backwards"));
            }
            (a, b)
        } else {
            let a = day_of_week(base)?;
            // `1/2` steps to the end of the week, as cronie reads it.
            (a, if step.is_some() { a.max(6) } else { a })
        };
        for day in (first..=last).step_by(step.unwrap_or(1)) {
            days[day % 7] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of week: 0-7 (0 and 7 are Sunday) or an English name.
fn day_of_week(text: &str) -> Result<usize, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(n) = text.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day of week `{n}` is out of range 0-7"))
        };
    }
    let lower = text.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .ok_or_else(|| format!("unknown day of week `{text}`"))
}

fn refuse_numeric_days_of_week(field: &str) -> Result<(), String> {
    let numeric = field.split(',').any(|item| {
        let base = item.split('/').next().unwrap_or_default();
        base.bytes().any(|b| b.is_ascii_digit())
    });
    if numeric {
        Err("numeric days of week are ambiguous with a seconds field (1 is Sunday there, Monday in crontab); use names such as MON-FRI".to_string())
    } else {
        Ok(())
    }
}

fn compile_cron(expression: &str) -> Result<cron::Schedule, String> {
    expression.parse::<cron::Schedule>().map_err(|e| {
        // The crate's message repeats the expression with a caret line, then
        // (sometimes) explains; keep only the explanation.
        let message = e.to_string();
        let mut lines = message.lines().skip(1);
        let caret = lines.next().and_then(|line| line.find('^'));
        let explanation: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
        if !explanation.is_empty() {
            // "Minutes must be less than 59" means at most 59.
            return explanation
                .join(" ")
                .replace("must be less than", "must be at most");
        }
        match caret
            .and_then(|at| expression.get(at..))
            .and_then(|rest| rest.split_whitespace().next())
        {
            Some(token) => format!("unexpected `{token}`"),
            None => "incomplete expression".to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(text: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedules_tick_when_expected() {
        // 2025-01-01 is a Wednesday.
        let cases = [
            (
                "*/15 * * * *",
                "2025-01-01T10:07:30Z",
                "2025-01-01T10:15:00Z",
            ),
            (
                "*/15 * * * *",
                "2025-01-01T10:15:00Z",
                "2025-01-01T10:30:00Z",
            ),
            ("30 9 * * *", "2025-01-01T10:00:00Z", "2025-01-02T09:30:00Z"),
            (
                "* * * * * *",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:01Z",
            ),
            (
                "*/2 * * * * *",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:00:02Z",
            ),
            (
                "*/10 * * * * * 2026",
                "2025-01-01T10:00:00Z",
                "2026-01-01T00:00:00Z",
            ),
            (
                "0 30 9 * * MON-FRI",
                "2025-01-03T10:00:00Z",
                "2025-01-06T09:30:00Z",
            ),
            ("@hourly", "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"),
            ("@daily", "2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z"),
            ("@midnight", "2025-01-01T10:00:00Z", "2025-01-02T00:00:00Z"),
            ("@weekly", "2025-01-01T10:00:00Z", "2025-01-05T00:00:00Z"),
            ("@monthly", "2025-01-01T10:00:00Z", "2025-02-01T00:00:00Z"),
            ("@yearly", "2025-01-01T10:00:00Z", "2026-01-01T00:00:00Z"),
            ("@annually", "2025-01-01T10:00:00Z", "2026-01-01T00:00:00Z"),
            // Crontab day-of-week numbering: 0 and 7 are Sunday, 1 Monday.
            ("0 9 * * 1", "2025-01-01T10:00:00Z", "2025-01-06T09:00:00Z"),
            ("0 9 * * 0", "2025-01-01T10:00:00Z", "2025-01-05T09:00:00Z"),
            ("0 9 * * 7", "2025-01-01T10:00:00Z", "2025-01-05T09:00:00Z"),
            (
                "0 9 * * 1-5",
                "2025-01-03T10:00:00Z",
                "2025-01-06T09:00:00Z",
            ),
            (
                "0 9 * * 5-7",
                "2025-01-01T10:00:00Z",
                "2025-01-03T09:00:00Z",
            ),
            (
                "0 9 * * sat,sun",
                "2025-01-01T10:00:00Z",
                "2025-01-04T09:00:00Z",
            ),
            (
                "0 9 * * fri-sun",
                "2025-01-04T10:00:00Z",
                "2025-01-05T09:00:00Z",
            ),
            (
                "0 9 * * */2",
                "2025-01-01T10:00:00Z",
                "2025-01-02T09:00:00Z",
            ),
            // Day of month OR day of week, as crontab does: the 20th or Mondays.
            ("0 0 20 * 1", "2025-01-01T10:00:00Z", "2025-01-06T00:00:00Z"),
            ("0 0 20 * 1", "2025-01-14T10:00:00Z", "2025-01-20T00:00:00Z"),
            ("0 0 20 * 1", "2025-01-20T10:00:00Z", "2025-01-27T00:00:00Z"),
        ];
        for (expression, after, expected) in cases {
            let schedule =
                Schedule::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
            assert_eq!(schedule.as_str(), expression);
            assert_eq!(
                schedule.next_after(at(after)),
                Some(at(expected)),
                "{expression} after {after}"
            );
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        let cases = [
            ("", "empty schedule"),
            ("* * *", "expected 5 fields"),
            ("@every 5m", "expected 5 fields"),
            ("@fortnightly", "unknown `@fortnightly`"),
            ("0 9 * * 8", "day of week `8` is out of range 0-7"),
            ("0 9 * * 5-1", "range `5-1` runs backwards"),
            ("0 9 * * mon/0", "invalid step `0`"),
            ("0 9 * * funday", "unknown day of week `funday`"),
            ("x * * * *", "Minutes"),
            ("0 0 31 2 *", "never fires"),
            ("0 0 0 * * 1", "ambiguous"),
            ("0 0 0 * * MON-FRI 2001", "never fires"),
        ];
        for (expression, expected) in cases {
            let err = Schedule::parse(expression).unwrap_err();
            assert!(err.contains(expected), "{expression}: {err}");
        }
        // A schedule later than now is not "never".
        let in_a_while = Utc.with_ymd_and_hms(2099, 6, 1, 0, 0, 0).unwrap();
        let s = Schedule::parse("0 0 0 1 6 * 2099").unwrap();
        assert_eq!(s.next_after(Utc::now()), Some(in_a_while));
    }
}
