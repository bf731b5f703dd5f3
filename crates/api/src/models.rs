//! Data-driven attribution models, one per tenant, retrained in the background every
//! [`RETRAIN_EVERY`] and on demand (`trainAttributionModel`). Held in memory: a restart
//! retrains, and until then DATA_DRIVEN campaigns fall back to last click with a reason.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use clickledger_domain::attribution::{MIN_JOURNEYS, MarkovTrainer};
use clickledger_domain::ids::TenantId;
use clickledger_persistence::Db;
use clickledger_persistence::conversions::{
    TrainedModel, for_each_training_journey, tenants_with_data_driven_campaigns,
};

pub const RETRAIN_EVERY: Duration = Duration::from_secs(3600);
/// Journeys older than this do not shape today's model.
pub const TRAINING_WINDOW_DAYS: i64 = 90;

#[derive(Default)]
pub struct ModelStore {
    models: RwLock<HashMap<TenantId, Arc<TrainedModel>>>,
}

impl ModelStore {
    pub fn get(&self, tenant: TenantId) -> Option<Arc<TrainedModel>> {
        self.models.read().ok()?.get(&tenant).cloned()
    }

    pub async fn train(&self, db: &Db, tenant: TenantId) -> Result<Arc<TrainedModel>, crate::Error> {
        let since = Utc::now() - chrono::Duration::days(TRAINING_WINDOW_DAYS);
        // Journeys are read a page at a time and folded into transition counts as they come,
        // so memory follows the number of affiliates, not the traffic.
        let mut trainer = MarkovTrainer::new();
        for_each_training_journey(db, tenant, since, |path, converted| trainer.add(path, converted)).await?;
        // Solving is CPU-bound (cubic in the number of affiliates): keep it off the workers.
        let model = tokio::task::spawn_blocking(move || trainer.finish(MIN_JOURNEYS))
            .await
            .map_err(|err| crate::Error::Internal(err.to_string()))?;
        let trained = Arc::new(TrainedModel {
            version: format!("markov-{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), model.trained_on),
            model,
        });
        if let Ok(mut models) = self.models.write() {
            models.insert(tenant, trained.clone());
        }
        Ok(trained)
    }

    pub fn spawn_retraining(self: &Arc<Self>, db: Db) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RETRAIN_EVERY);
            loop {
                every.tick().await;
                let tenants = match tenants_with_data_driven_campaigns(&db).await {
                    Ok(tenants) => tenants,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot list tenants to retrain");
                        continue;
                    }
                };
                for tenant in tenants {
                    if let Err(err) = store.train(&db, tenant).await {
                        tracing::warn!(error = %err, %tenant, "retraining the data-driven model failed");
                    }
                }
            }
        })
    }
}
