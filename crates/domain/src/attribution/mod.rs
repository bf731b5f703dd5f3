//! Attribution models: how a conversion's credit is shared among the touchpoints (clicks) of
//! its journey.
//!
//! The journey is taken in time order (a stable sort, so simultaneous touches keep the order
//! they were given in). Each model gives every touch a weight; touches of the same key
//! (affiliate) are merged by adding their weights, and each key's share is its weight over the
//! total.
//!
//! Shares are exact decimals with at most [`SHARE_SCALE`] places and sum to exactly 1 for
//! every journey that has a touch. The remainder rule (largest remainder): each key's exact
//! share is rounded down to six places; the millionths left over go one each to the keys with
//! the largest remainders, ties to the key whose last touch is later. Keys whose share is
//! still zero (zero weight, or a weight too small to earn a millionth) get no credit. Credits
//! are listed in order of each key's first touch.

mod decision;
mod late_chargeback;
mod markov;
mod shares;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use crate::Error;

pub use decision::{
    CLOCK_SKEW, ClickCredit, ClickFacts, JourneyTouch, TrainedModel, UnattributedReason, credit_from_click,
    journey_cutoff,
};
pub use late_chargeback::{ArrivedOriginal, LateChargeback, Reversal, StoredChargeback, late_chargeback};
pub use markov::{MIN_JOURNEYS, MarkovModel, MarkovTrainer};

/// Decimal places of a share.
pub const SHARE_SCALE: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttributionModel {
    FirstClick,
    #[default]
    LastClick,
    Linear,
    TimeDecay,
    PositionBased,
    DataDriven,
}

impl AttributionModel {
    pub const ALL: [AttributionModel; 6] = [
        AttributionModel::FirstClick,
        AttributionModel::LastClick,
        AttributionModel::Linear,
        AttributionModel::TimeDecay,
        AttributionModel::PositionBased,
        AttributionModel::DataDriven,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttributionModel::FirstClick => "FIRST_CLICK",
            AttributionModel::LastClick => "LAST_CLICK",
            AttributionModel::Linear => "LINEAR",
            AttributionModel::TimeDecay => "TIME_DECAY",
            AttributionModel::PositionBased => "POSITION_BASED",
            AttributionModel::DataDriven => "DATA_DRIVEN",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        AttributionModel::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| Error::invalid("attributionModel", format!("unknown model `{s}`")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touchpoint<K> {
    pub key: K,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit<K> {
    pub key: K,
    pub share: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution<K> {
    pub credits: Vec<Credit<K>>,
    pub model_used: AttributionModel,
    /// Why `model_used` is not the model asked for.
    pub fallback_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AttributionParams {
    /// TIME_DECAY: a touch this long before the conversion weighs half as much as one at it.
    pub time_decay_half_life: Duration,
}

impl Default for AttributionParams {
    fn default() -> Self {
        AttributionParams { time_decay_half_life: Duration::days(7) }
    }
}

/// Shares a conversion's credit among `journey` (see the module doc). DATA_DRIVEN needs a
/// usable `data_driven` model; without one it falls back to LAST_CLICK and says why.
pub fn attribute<K: Clone + Ord>(
    model: AttributionModel,
    journey: &[Touchpoint<K>],
    converted_at: DateTime<Utc>,
    params: &AttributionParams,
    data_driven: Option<&MarkovModel<K>>,
) -> Attribution<K> {
    let mut touches: Vec<&Touchpoint<K>> = journey.iter().collect();
    touches.sort_by_key(|t| t.at);
    let n = touches.len();
    let weights = match model {
        _ if n == 0 => Vec::new(),
        AttributionModel::FirstClick => one_hot(n, 0),
        AttributionModel::LastClick => one_hot(n, n - 1),
        AttributionModel::Linear => vec![1; n],
        AttributionModel::TimeDecay => time_decay(&touches, converted_at, params.time_decay_half_life),
        AttributionModel::PositionBased => position_based(n),
        AttributionModel::DataDriven => match data_driven_weights(&touches, data_driven) {
            Ok(weights) => weights,
            Err(reason) => {
                return Attribution {
                    credits: shares::apportion(&touches, &one_hot(n, n - 1)),
                    model_used: AttributionModel::LastClick,
                    fallback_reason: Some(reason),
                };
            }
        },
    };
    Attribution { credits: shares::apportion(&touches, &weights), model_used: model, fallback_reason: None }
}

/// Weights are integers so that apportioning is exact; fractional weights are scaled by this
/// much first, which keeps 53 bits, all an `f64` has.
const WEIGHT_ONE: f64 = (1u64 << 53) as f64;

fn quantize(weight: f64) -> u128 {
    // `as` saturates and maps NaN to 0, which is what a weight outside [0, 1] deserves.
    (weight.clamp(0.0, 1.0) * WEIGHT_ONE).round() as u128
}

fn one_hot(n: usize, hot: usize) -> Vec<u128> {
    (0..n).map(|i| u128::from(i == hot)).collect()
}

fn position_based(n: usize) -> Vec<u128> {
    if n < 3 {
        return vec![1; n];
    }
    // 40/20/40 in integers: the ends weigh 2(n-2) each and each middle touch 1, of 5(n-2).
    let end = 2 * (n as u128 - 2);
    (0..n).map(|i| if i == 0 || i + 1 == n { end } else { 1 }).collect()
}

fn time_decay<K>(touches: &[&Touchpoint<K>], converted_at: DateTime<Utc>, half_life: Duration) -> Vec<u128> {
    // Ages are measured from the latest touch rather than the conversion: the shares are the
    // same, but the newest weight is 1, so a long-ago journey cannot underflow to all zeros.
    let Some(latest) = touches.iter().map(|t| t.at).max() else { return Vec::new() };
    let reference = latest.min(converted_at);
    let half_life = half_life.num_milliseconds().max(1) as f64;
    touches
        .iter()
        .map(|t| {
            let age = (reference - t.at).num_milliseconds().max(0) as f64;
            quantize((-age / half_life).exp2())
        })
        .collect()
}

/// A key's weight is its removal effect, counted once however often it was touched (on its
/// first touch; merging puts it on the key either way).
fn data_driven_weights<K: Clone + Ord>(
    touches: &[&Touchpoint<K>],
    model: Option<&MarkovModel<K>>,
) -> Result<Vec<u128>, String> {
    let model = model.ok_or_else(|| "no data-driven model has been trained yet".to_owned())?;
    if let Some(reason) = model.unusable_reason() {
        return Err(reason);
    }
    let mut seen = BTreeSet::new();
    let weights: Vec<u128> = touches
        .iter()
        .map(|t| if seen.insert(&t.key) { quantize(model.removal_effect(&t.key).unwrap_or(0.0)) } else { 0 })
        .collect();
    if weights.iter().all(|&w| w == 0) {
        return Err("the journey's channels have no removal effect in the trained model".to_owned());
    }
    Ok(weights)
}

#[cfg(test)]
mod tests;
