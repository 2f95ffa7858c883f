//! Column lookup and the field checks shared by the formats.

use crate::bins::index::Prefix;
use crate::bins::record::{CardType, Country};
use crate::bins::regime::RegimeSet;
use crate::card::{CardNetwork, LengthSet, NetworkSet};

use super::RowError;

/// The positions of a format's columns in a header, found by name (case-insensitive).
#[derive(Debug)]
pub(super) struct ColumnMap {
    positions: Vec<Option<usize>>,
    width: usize,
}

impl ColumnMap {
    /// Finds `names` in `header`. Every name in `required` must be there, and the header may
    /// hold no column outside `names` (a misspelt column is an error, not silently empty).
    pub(super) fn new(
        header: &csv::StringRecord,
        names: &[&str],
        required: &[&str],
    ) -> Result<Self, String> {
        let header: Vec<String> = header
            .iter()
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        if let Some(unknown) = header.iter().find(|h| !names.contains(&h.as_str())) {
            return Err(format!(
                "unknown column `{unknown}`; the columns are {}",
                names.join(",")
            ));
        }
        if let Some(missing) = required.iter().find(|r| !header.iter().any(|h| h == *r)) {
            return Err(format!("missing column `{missing}`"));
        }
        Ok(Self {
            positions: names
                .iter()
                .map(|name| header.iter().position(|h| h == name))
                .collect(),
            width: header.len(),
        })
    }

    /// The trimmed value of the `index`-th name given to [`ColumnMap::new`]; empty when the
    /// table has no such column.
    pub(super) fn get<'r>(&self, row: &'r csv::StringRecord, index: usize) -> &'r str {
        self.positions[index]
            .and_then(|position| row.get(position))
            .unwrap_or_default()
            .trim()
    }

    /// Checks the row has as many fields as the header.
    pub(super) fn check_width(&self, row: &csv::StringRecord) -> Result<(), RowError> {
        if row.len() == self.width {
            Ok(())
        } else {
            Err(RowError::Columns {
                expected: self.width,
                found: row.len(),
            })
        }
    }
}

/// A single prefix, or a range when `last` is not empty.
pub(super) fn prefix_range(first: &str, last: &str) -> Result<(Prefix, Prefix), RowError> {
    let first = Prefix::parse(first)?;
    if last.is_empty() {
        return Ok((first, first));
    }
    let last = Prefix::parse(last)?;
    if last.len() != first.len() || last < first {
        return Err(RowError::RangeOrder);
    }
    Ok((first, last))
}

pub(super) fn country(column: &'static str, text: &str) -> Result<Option<Country>, RowError> {
    if text.is_empty() {
        return Ok(None);
    }
    Country::from_alpha2(text)
        .map(Some)
        .ok_or(RowError::Country { column })
}

/// `text` is one of `names`, in any case. (No allocation: this runs for every field of
/// millions of rows.)
fn one_of(text: &str, names: &[&str]) -> bool {
    names.iter().any(|name| name.eq_ignore_ascii_case(text))
}

pub(super) fn yes_no(column: &'static str, text: &str) -> Result<Option<bool>, RowError> {
    if text.is_empty() {
        Ok(None)
    } else if one_of(text, &["y", "yes", "true", "1"]) {
        Ok(Some(true))
    } else if one_of(text, &["n", "no", "false", "0"]) {
        Ok(Some(false))
    } else {
        Err(value_error(column, text, "Y, N, true, false or empty"))
    }
}

pub(super) fn card_type(column: &'static str, text: &str) -> Result<Option<CardType>, RowError> {
    if text.is_empty() {
        Ok(None)
    } else if one_of(text, &["debit"]) {
        Ok(Some(CardType::Debit))
    } else if one_of(text, &["credit"]) {
        Ok(Some(CardType::Credit))
    } else if one_of(text, &["charge", "charge card"]) {
        Ok(Some(CardType::Charge))
    } else {
        Err(value_error(column, text, "DEBIT, CREDIT, CHARGE or empty"))
    }
}

pub(super) fn lengths(column: &'static str, text: &str) -> Result<Option<LengthSet>, RowError> {
    if text.is_empty() {
        return Ok(None);
    }
    LengthSet::parse(text)
        .map(Some)
        .map_err(|source| RowError::Lengths { column, source })
}

/// Networks by their slugs, separated by `;` (`dankort`, `girocard;maestro`); empty for none.
pub(super) fn networks(column: &'static str, text: &str) -> Result<NetworkSet, RowError> {
    let mut set = NetworkSet::empty();
    if text.is_empty() {
        return Ok(set);
    }
    for slug in text.split(';') {
        let network = CardNetwork::from_slug(slug).ok_or_else(|| {
            value_error(
                column,
                slug.trim(),
                "network names such as dankort, girocard, eftpos-australia, separated by ; (docs/data-format.md)",
            )
        })?;
        set.insert(network);
    }
    Ok(set)
}

/// Regimes by their slugs separated by `;`, or `none`; empty says nothing (`None`).
pub(super) fn regimes(column: &'static str, text: &str) -> Result<Option<RegimeSet>, RowError> {
    if text.is_empty() {
        return Ok(None);
    }
    RegimeSet::parse(text).map(Some).map_err(|_| {
        value_error(
            column,
            text,
            "none, or eu-ifr, uk-ifr, us-durbin separated by ;",
        )
    })
}

/// Tables without a prepaid column say PREPAID in the category; an empty category says
/// nothing either way.
pub(super) fn prepaid_from_category(category: &str) -> Option<bool> {
    if category.is_empty() {
        None
    } else {
        Some(category.to_ascii_uppercase().contains("PREPAID"))
    }
}

/// A value outside the allowed set. The value is echoed only when it has no digits (so a
/// misplaced card number can never be).
pub(super) fn value_error(column: &'static str, text: &str, allowed: &'static str) -> RowError {
    let value = if text.chars().any(|c| c.is_ascii_digit()) {
        "(a value with digits)".to_owned()
    } else {
        text.chars().take(40).collect()
    };
    RowError::Value {
        column,
        value,
        allowed,
    }
}
