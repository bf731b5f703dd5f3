//! The data-driven attribution model: its current state and on-demand retraining.

use async_graphql::{Context, ID, Object, SimpleObject};
use clickledger_persistence::conversions::TrainedModel;

use super::context::{principal, state};
use super::guard::Allow;

#[derive(SimpleObject)]
pub struct ChannelEffect {
    pub affiliate_id: ID,
    /// Relative drop in conversion probability without this affiliate (0 to 1).
    pub removal_effect: f64,
}

#[derive(SimpleObject)]
pub struct AttributionModelReport {
    /// Recorded on each conversion the model attributes.
    pub version: String,
    /// Journeys (converting or not) it was trained on.
    pub trained_on: i32,
    /// Whether DATA_DRIVEN campaigns use it; below the minimum data they fall back to
    /// LAST_CLICK and say so on each conversion.
    pub usable: bool,
    pub channels: Vec<ChannelEffect>,
}

impl From<&TrainedModel> for AttributionModelReport {
    fn from(trained: &TrainedModel) -> Self {
        AttributionModelReport {
            version: trained.version.clone(),
            trained_on: i32::try_from(trained.model.trained_on).unwrap_or(i32::MAX),
            usable: trained.model.is_usable(),
            channels: trained
                .model
                .removal_effects()
                .map(|(affiliate, effect)| ChannelEffect {
                    affiliate_id: ID(affiliate.to_string()),
                    removal_effect: effect,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct AttributionQuery;

#[Object]
impl AttributionQuery {
    /// The tenant's data-driven model, if one has been trained since the server started.
    #[graphql(guard = "Allow::STAFF")]
    async fn attribution_model(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<AttributionModelReport>> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        Ok(state.models.get(principal.tenant).as_deref().map(AttributionModelReport::from))
    }
}

#[derive(Default)]
pub struct AttributionMutation;

#[Object]
impl AttributionMutation {
    /// Retrains the tenant's data-driven (Markov removal-effect) model now.
    #[graphql(guard = "Allow::STAFF")]
    async fn train_attribution_model(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<AttributionModelReport> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let trained =
            state.models.train(&state.db, principal.tenant).await.map_err(crate::Error::into_gql)?;
        Ok(AttributionModelReport::from(trained.as_ref()))
    }
}
