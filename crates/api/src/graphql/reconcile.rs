//! `reconcile`: a parallel run's differences between the old system's conversions and ours.

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use clickledger_domain::reconcile::{self, Side};
use rust_decimal::Decimal;

use super::context::{principal, state};
use super::guard::Allow;
use crate::error::GqlResultExt;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileBucket {
    /// On both sides, with the same amount, currency and commission.
    Matched,
    /// On both sides, differing in amount, currency or commission.
    Different,
    /// Only in the old system's file.
    OnlyTheirs,
    /// Only here.
    OnlyOurs,
}

impl From<reconcile::Bucket> for ReconcileBucket {
    fn from(bucket: reconcile::Bucket) -> Self {
        match bucket {
            reconcile::Bucket::Matched => ReconcileBucket::Matched,
            reconcile::Bucket::Different => ReconcileBucket::Different,
            reconcile::Bucket::OnlyTheirs => ReconcileBucket::OnlyTheirs,
            reconcile::Bucket::OnlyOurs => ReconcileBucket::OnlyOurs,
        }
    }
}

/// One side of a transaction.
#[derive(SimpleObject)]
pub struct ReconcileSide {
    pub event: String,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub commission: Decimal,
    pub occurred_at: DateTime<Utc>,
    /// The old system's affiliate ID (ours: the credited affiliate's external ID, or its ID).
    pub affiliate: Option<String>,
}

impl From<Side> for ReconcileSide {
    fn from(side: Side) -> Self {
        ReconcileSide {
            event: side.event,
            amount: side.amount,
            currency: side.currency.map(|c| c.code().to_owned()),
            commission: side.commission,
            occurred_at: side.occurred_at,
            affiliate: side.affiliate,
        }
    }
}

#[derive(SimpleObject)]
pub struct ReconcileLine {
    pub txn_id: String,
    pub bucket: ReconcileBucket,
    pub theirs: Option<ReconcileSide>,
    pub ours: Option<ReconcileSide>,
    /// Ours minus theirs, when the amounts (or their currencies) differ.
    pub amount_difference: Option<Decimal>,
    pub currency_differs: bool,
    /// Ours minus theirs, when the commissions differ.
    pub commission_difference: Option<Decimal>,
}

#[derive(SimpleObject)]
pub struct ReconcileReport {
    pub matched: i64,
    pub different: i64,
    pub only_theirs: i64,
    pub only_ours: i64,
    /// Rows of the file outside the period, not compared.
    pub outside_period: i64,
    /// Every compared transaction, by transaction ID.
    pub lines: Vec<ReconcileLine>,
}

#[derive(Default)]
pub struct ReconcileQuery;

#[Object]
impl ReconcileQuery {
    /// Compares the old system's conversions (`theirs`: the CSV text of its export, columns
    /// `txn_id,event,amount,currency,commission,occurred_at[,affiliate_external_id]`) with
    /// this tenant's conversions that occurred in `[from, to)`, by transaction ID. Staff only.
    #[graphql(guard = "Allow::STAFF")]
    async fn reconcile(
        &self,
        ctx: &Context<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        theirs: String,
    ) -> async_graphql::Result<ReconcileReport> {
        let scope = principal(ctx)?.scope();
        let report = crate::reconcile::run(&state(ctx).db, scope, from, to, theirs.as_bytes(), "theirs")
            .await
            .gql()?;
        let count = |bucket| i64::try_from(report.count(bucket)).unwrap_or(i64::MAX);
        Ok(ReconcileReport {
            matched: count(reconcile::Bucket::Matched),
            different: count(reconcile::Bucket::Different),
            only_theirs: count(reconcile::Bucket::OnlyTheirs),
            only_ours: count(reconcile::Bucket::OnlyOurs),
            outside_period: i64::try_from(report.outside_period).unwrap_or(i64::MAX),
            lines: report
                .lines
                .into_iter()
                .map(|line| ReconcileLine {
                    txn_id: line.txn_id,
                    bucket: line.bucket.into(),
                    theirs: line.theirs.map(Into::into),
                    ours: line.ours.map(Into::into),
                    amount_difference: line.amount_difference,
                    currency_differs: line.currency_differs,
                    commission_difference: line.commission_difference,
                })
                .collect(),
        })
    }
}
