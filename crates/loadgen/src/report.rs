//! Result lines: a human summary plus one machine-readable `RESULT key=value ...` line that
//! `bench/turn` parses with plain shell tools.

use std::fmt::Write as _;

/// Ordered key/value pairs of one run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    kind: &'static str,
    fields: Vec<(&'static str, String)>,
}

impl Report {
    /// A report for the subcommand `kind` (`binding`, `allocate`, `relay`).
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    /// Adds an integer field.
    pub fn int(&mut self, key: &'static str, value: u64) -> &mut Self {
        self.fields.push((key, value.to_string()));
        self
    }

    /// Adds a decimal field, printed with `decimals` digits after the point.
    pub fn float(&mut self, key: &'static str, value: f64, decimals: usize) -> &mut Self {
        let text = if value.is_finite() {
            format!("{value:.decimals$}")
        } else {
            "nan".to_string()
        };
        self.fields.push((key, text));
        self
    }

    /// Adds a word field (spaces would break the line format, so they become `_`).
    pub fn word(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.fields
            .push((key, value.replace(char::is_whitespace, "_")));
        self
    }

    /// The `RESULT kind=... key=value ...` line.
    pub fn line(&self) -> String {
        let mut line = format!("RESULT kind={}", self.kind);
        for (key, value) in &self.fields {
            let _ = write!(line, " {key}={value}");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_keeps_field_order_and_formats_numbers() {
        let mut report = Report::new("relay");
        report
            .word("mode", "channel")
            .int("sent", 1000)
            .float("loss_pct", 0.25, 3)
            .float("cpu", f64::NAN, 2)
            .word("note", "two words");
        assert_eq!(
            report.line(),
            "RESULT kind=relay mode=channel sent=1000 loss_pct=0.250 cpu=nan note=two_words"
        );
    }
}
