//! The GraphQL schema. Each area keeps its resolvers in its own module; they are merged here,
//! and [`build_schema`] is the one place that sets limits, so the server and
//! `export-schema` can never disagree.

mod account;
mod affiliates;
mod api_keys;
mod attribution;
mod audit;
mod campaigns;
mod commission;
mod context;
mod conversions;
mod fraud;
mod fraud_alerts;
mod guard;
mod import_jobs;
mod invitations;
mod pagination;
mod postbacks;
mod reconcile;
pub mod reporting;
mod tracking_links;
mod types;
mod users;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::state::SharedState;

pub use context::{ClientIp, ClientUserAgent, LongLivedSession};
pub use conversions::{LiveEvent, LiveRequest, OpeningLive};

#[derive(MergedObject, Default)]
pub struct Query(
    account::AccountQuery,
    affiliates::AffiliateQuery,
    campaigns::CampaignQuery,
    tracking_links::TrackingLinkQuery,
    api_keys::ApiKeyQuery,
    conversions::ConversionQuery,
    attribution::AttributionQuery,
    users::UserQuery,
    commission::CommissionQuery,
    postbacks::PostbackQuery,
    fraud::FraudQuery,
    reporting::ReportingQuery,
    audit::AuditQuery,
    import_jobs::ImportJobQuery,
    reconcile::ReconcileQuery,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    conversions::ConversionSubscription,
    fraud_alerts::FraudAlertSubscription,
    reporting::ReportingSubscription,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    account::AccountMutation,
    affiliates::AffiliateMutation,
    campaigns::CampaignMutation,
    tracking_links::TrackingLinkMutation,
    api_keys::ApiKeyMutation,
    attribution::AttributionMutation,
    users::UserMutation,
    commission::CommissionMutation,
    postbacks::PostbackMutation,
    invitations::InvitationMutation,
    fraud::FraudMutation,
    import_jobs::ImportJobMutation,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Deepest selection nesting accepted; our deepest honest query (a connection of nodes with
/// a nested object) is about 6.
pub const MAX_DEPTH: usize = 12;
/// Upper bound on a query's cost (every field 1, lists multiplied by their `first`).
pub const MAX_COMPLEXITY: usize = 2_000;
/// Fragment-recursion bound for the parser, far below anything that could blow the stack.
pub const MAX_RECURSION: usize = 32;
/// Directives on one field; more is only ever an attack on the validator.
pub const MAX_DIRECTIVES: usize = 8;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .limit_recursive_depth(MAX_RECURSION)
        .limit_directives(MAX_DIRECTIVES)
}

pub fn build_schema(state: SharedState) -> AppSchema {
    builder().data(state).finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_schema_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            checked_in == super::sdl(),
            "schema.graphql is out of date: run `cargo run -- export-schema --out schema.graphql`"
        );
    }
}
