//! Conversion events and their status lifecycle.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// What the operator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Registration,
    /// First-time deposit.
    Ftd,
    Deposit,
    Purchase,
    /// A Forex/CFD trade, in lots.
    Trade,
    /// Net revenue for a period; may be negative.
    Revenue,
    /// Reverses the transaction named by `txn_id`.
    Chargeback,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::Registration,
        EventKind::Ftd,
        EventKind::Deposit,
        EventKind::Purchase,
        EventKind::Trade,
        EventKind::Revenue,
        EventKind::Chargeback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Registration => "registration",
            EventKind::Ftd => "ftd",
            EventKind::Deposit => "deposit",
            EventKind::Purchase => "purchase",
            EventKind::Trade => "trade",
            EventKind::Revenue => "revenue",
            EventKind::Chargeback => "chargeback",
        }
    }

    /// Events that move money (or lots) need a transaction ID, so retries never double-pay.
    pub fn needs_txn_id(self) -> bool {
        !matches!(self, EventKind::Registration)
    }

    /// Events whose `amount` is required.
    pub fn needs_amount(self) -> bool {
        matches!(self, EventKind::Ftd | EventKind::Deposit | EventKind::Purchase | EventKind::Revenue)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "reg" | "signup" | "lead" => "registration",
            "first_deposit" | "firstdeposit" => "ftd",
            "sale" => "purchase",
            "reversal" | "refund" => "chargeback",
            other => other,
        };
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == alias).ok_or_else(|| {
            Error::invalid(
                "event",
                "must be one of registration, ftd, deposit, purchase, trade, revenue, chargeback",
            )
        })
    }
}

/// A conversion's status. Operators confirm later (a deposit clears, a sale ships), so status
/// only ever moves forward: pending → approved, and pending or approved → rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversionStatus {
    Pending,
    Approved,
    Rejected,
}

/// What a repeat of a known transaction with a new status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMove {
    /// Same status: a plain duplicate.
    Unchanged,
    /// A legal step forward, to apply once.
    Forward,
    /// A step back, refused.
    Backward,
}

impl ConversionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Pending => "pending",
            ConversionStatus::Approved => "approved",
            ConversionStatus::Rejected => "rejected",
        }
    }

    fn rank(self) -> u8 {
        match self {
            ConversionStatus::Pending => 0,
            ConversionStatus::Approved => 1,
            ConversionStatus::Rejected => 2,
        }
    }

    pub fn move_to(self, next: ConversionStatus) -> StatusMove {
        match self.rank().cmp(&next.rank()) {
            std::cmp::Ordering::Equal => StatusMove::Unchanged,
            std::cmp::Ordering::Less => StatusMove::Forward,
            std::cmp::Ordering::Greater => StatusMove::Backward,
        }
    }
}

impl fmt::Display for ConversionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversionStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Ok(ConversionStatus::Pending),
            "approved" | "approve" | "confirmed" => Ok(ConversionStatus::Approved),
            "rejected" | "reject" | "declined" => Ok(ConversionStatus::Rejected),
            _ => Err(Error::invalid("status", "must be one of pending, approved, rejected")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversionStatus::*;

    #[test]
    fn status_only_moves_forward() {
        assert_eq!(Pending.move_to(Approved), StatusMove::Forward);
        assert_eq!(Pending.move_to(Rejected), StatusMove::Forward);
        assert_eq!(Approved.move_to(Rejected), StatusMove::Forward);
        assert_eq!(Approved.move_to(Pending), StatusMove::Backward);
        assert_eq!(Rejected.move_to(Approved), StatusMove::Backward);
        assert_eq!(Approved.move_to(Approved), StatusMove::Unchanged);
    }

    #[test]
    fn event_names_and_aliases() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
        assert_eq!("FTD".parse::<EventKind>().unwrap(), EventKind::Ftd);
        assert_eq!("sale".parse::<EventKind>().unwrap(), EventKind::Purchase);
        assert_eq!("bogus".parse::<EventKind>().unwrap_err().field(), "event");
    }
}
