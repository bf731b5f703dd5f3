//! Attribution models: how a conversion's credit is shared among the touchpoints (clicks) of
//! its journey.
//!
//! Shares are exact decimals with [`SHARE_SCALE`] places that sum to exactly 1. The
//! remainder rule: each key's exact share is truncated to six places; the millionths left over
//! go one each to the keys with the largest truncated remainders, ties to the key whose last
//! touch is later. Touches of the same key (affiliate) are merged.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::Error;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touchpoint<K> {
    pub key: K,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit<K> {
    pub key: K,
    pub share: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution<K> {
    pub credits: Vec<Credit<K>>,
    pub model_used: AttributionModel,
    pub fallback_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AttributionParams {
    pub time_decay_half_life: Duration,
}

impl Default for AttributionParams {
    fn default() -> Self {
        AttributionParams { time_decay_half_life: Duration::days(7) }
    }
}

pub fn attribute<K: Clone + Ord>(
    model: AttributionModel,
    journey: &[Touchpoint<K>],
    converted_at: DateTime<Utc>,
    params: &AttributionParams,
    data_driven: Option<&MarkovModel<K>>,
) -> Attribution<K> {
    let mut touches: Vec<&Touchpoint<K>> = journey.iter().collect();
    touches.sort_by_key(|t| t.at); // stable: ties keep input order
    let done = |credits, model_used, fallback_reason| Attribution { credits, model_used, fallback_reason };
    if touches.is_empty() {
        return done(Vec::new(), model, None);
    }
    let n = touches.len();
    let weights: Vec<Decimal> = match model {
        AttributionModel::FirstClick => {
            (0..n).map(|i| if i == 0 { Decimal::ONE } else { Decimal::ZERO }).collect()
        }
        AttributionModel::LastClick => last_click(n),
        AttributionModel::Linear => vec![Decimal::ONE; n],
        AttributionModel::TimeDecay => {
            let half_life = params.time_decay_half_life.num_milliseconds().max(1) as f64;
            touches
                .iter()
                .map(|t| {
                    let age = (converted_at - t.at).num_milliseconds().max(0) as f64;
                    Decimal::from_f64(2f64.powf(-age / half_life)).unwrap_or(Decimal::ZERO)
                })
                .collect()
        }
        AttributionModel::PositionBased => position_based(n),
        AttributionModel::DataDriven => {
            let reason = match data_driven {
                None => Some("no data-driven model trained yet".to_owned()),
                Some(m) if !m.is_usable() => Some(format!("too little data ({} journeys)", m.trained_on)),
                Some(m) => {
                    let weights: Vec<Decimal> = touches
                        .iter()
                        .map(|t| {
                            m.removal_effect(&t.key).and_then(Decimal::from_f64).unwrap_or(Decimal::ZERO)
                        })
                        .collect();
                    if weights.iter().all(|w| w.is_zero()) {
                        Some("journey's channels have no removal effect".to_owned())
                    } else {
                        // Each channel's credit is its removal effect, shared by its touches.
                        let mut counts: BTreeMap<&K, u32> = BTreeMap::new();
                        for t in &touches {
                            *counts.entry(&t.key).or_default() += 1;
                        }
                        let per_touch = touches
                            .iter()
                            .zip(weights)
                            .map(|(t, w)| w / Decimal::from(counts[&t.key]))
                            .collect();
                        return done(apportion(&touches, per_touch), AttributionModel::DataDriven, None);
                    }
                }
            };
            return done(apportion(&touches, last_click(n)), AttributionModel::LastClick, reason);
        }
    };
    done(apportion(&touches, weights), model, None)
}

fn last_click(n: usize) -> Vec<Decimal> {
    (0..n).map(|i| if i + 1 == n { Decimal::ONE } else { Decimal::ZERO }).collect()
}

fn position_based(n: usize) -> Vec<Decimal> {
    match n {
        1 => vec![Decimal::ONE],
        2 => vec![Decimal::new(5, 1), Decimal::new(5, 1)],
        _ => {
            let middle = Decimal::new(2, 1) / Decimal::from(n - 2);
            (0..n).map(|i| if i == 0 || i + 1 == n { Decimal::new(4, 1) } else { middle }).collect()
        }
    }
}

/// Merges weights by key and turns them into shares that sum to exactly 1 (see module doc).
fn apportion<K: Clone + Ord>(touches: &[&Touchpoint<K>], weights: Vec<Decimal>) -> Vec<Credit<K>> {
    // (key, weight, index of its last touch), in order of first appearance.
    let mut merged: Vec<(K, Decimal, usize)> = Vec::new();
    for (index, (touch, weight)) in touches.iter().zip(weights).enumerate() {
        match merged.iter_mut().find(|(k, _, _)| *k == touch.key) {
            Some(entry) => {
                entry.1 += weight;
                entry.2 = index;
            }
            None => merged.push((touch.key.clone(), weight, index)),
        }
    }
    merged.retain(|(_, w, _)| *w > Decimal::ZERO);
    let total: Decimal = merged.iter().map(|(_, w, _)| *w).sum();
    if merged.is_empty() || total <= Decimal::ZERO {
        return Vec::new();
    }
    let unit = Decimal::new(1, SHARE_SCALE);
    let mut shares: Vec<(Decimal, Decimal)> = merged
        .iter()
        .map(|(_, w, _)| {
            let exact = *w / total;
            let floor = exact.round_dp_with_strategy(SHARE_SCALE, RoundingStrategy::ToZero);
            (floor, exact - floor)
        })
        .collect();
    let assigned: Decimal = shares.iter().map(|(f, _)| *f).sum();
    let leftover = ((Decimal::ONE - assigned) / unit).round().to_usize().unwrap_or(0);
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(merged[b].2.cmp(&merged[a].2)));
    for &i in order.iter().cycle().take(leftover) {
        shares[i].0 += unit;
    }
    merged
        .into_iter()
        .zip(shares)
        .map(|((key, _, _), (share, _))| Credit { key, share: share.normalize() })
        .collect()
}

/// Journeys needed before the data-driven model is trusted.
pub const MIN_JOURNEYS: usize = 100;

/// A first-order Markov-chain attribution model: a channel's credit is its removal effect,
/// the relative drop in conversion probability when the channel is removed from the graph.
/// Probabilities are computed exactly by solving for absorption probabilities (no
/// simulation). Solving costs O(n³) per channel for n channels, so it suits the tens to
/// hundreds of affiliates a tenant has, retrained in the background, not per conversion.
#[derive(Debug, Clone)]
pub struct MarkovModel<K> {
    channels: Vec<K>,
    removal_effects: Vec<f64>,
    conversions: usize,
    pub trained_on: usize,
    min_journeys: usize,
}

impl<K: Clone + Ord> MarkovModel<K> {
    pub fn train(journeys: &[(Vec<K>, bool)], min_journeys: usize) -> MarkovModel<K> {
        let channels: Vec<K> = {
            let mut all: Vec<K> = journeys.iter().flat_map(|(path, _)| path.iter().cloned()).collect();
            all.sort();
            all.dedup();
            all
        };
        let index = |k: &K| channels.binary_search(k).ok();
        // States: 0 = start, 1..=n channels, n+1 = conversion, n+2 = null.
        let n = channels.len();
        let (conv, null) = (n + 1, n + 2);
        let mut counts = vec![vec![0f64; n + 3]; n + 1];
        let mut conversions = 0;
        for (path, converted) in journeys {
            let mut from = 0;
            for key in path {
                let Some(i) = index(key) else { continue };
                counts[from][i + 1] += 1.0;
                from = i + 1;
            }
            counts[from][if *converted { conv } else { null }] += 1.0;
            conversions += usize::from(*converted);
        }
        let base = conversion_probability(&counts, None);
        let removal_effects = (0..n)
            .map(|i| {
                if base > 0.0 {
                    (1.0 - conversion_probability(&counts, Some(i + 1)) / base).max(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        MarkovModel { channels, removal_effects, conversions, trained_on: journeys.len(), min_journeys }
    }

    pub fn is_usable(&self) -> bool {
        self.trained_on >= self.min_journeys && self.conversions > 0
    }

    pub fn removal_effect(&self, key: &K) -> Option<f64> {
        self.channels.binary_search(key).ok().map(|i| self.removal_effects[i])
    }

    pub fn removal_effects(&self) -> impl Iterator<Item = (&K, f64)> {
        self.channels.iter().zip(self.removal_effects.iter().copied())
    }

    /// Each channel's share of `total_conversions`, proportional to its removal effect.
    pub fn total_credit(&self, total_conversions: f64) -> Vec<(K, f64)> {
        let sum: f64 = self.removal_effects.iter().sum();
        self.channels
            .iter()
            .zip(&self.removal_effects)
            .map(|(k, re)| (k.clone(), if sum > 0.0 { re / sum * total_conversions } else { 0.0 }))
            .collect()
    }
}

/// Probability of reaching conversion from start; `removed` turns a channel into a dead end.
fn conversion_probability(counts: &[Vec<f64>], removed: Option<usize>) -> f64 {
    let transient = counts.len(); // start + channels
    let conv = transient;
    // (I - Q) x = b over transient states.
    let mut a = vec![vec![0f64; transient + 1]; transient];
    for s in 0..transient {
        a[s][s] = 1.0;
        let total: f64 = counts[s].iter().sum();
        if total == 0.0 || Some(s) == removed {
            continue; // absorbs nowhere useful: x_s = 0
        }
        for (t, &count) in counts[s].iter().enumerate().take(transient) {
            if Some(t) != removed {
                a[s][t] -= count / total;
            }
        }
        a[s][transient] = counts[s][conv] / total;
    }
    solve(a).first().copied().unwrap_or(0.0)
}

/// Gaussian elimination with partial pivoting on an augmented matrix.
fn solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs())).unwrap_or(col);
        a.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-12 {
            continue;
        }
        for row in 0..n {
            if row != col {
                let factor = a[row][col] / p;
                if factor != 0.0 {
                    let pivot_row = a[col].clone();
                    for (cell, pivot_cell) in a[row].iter_mut().zip(pivot_row).skip(col) {
                        *cell -= factor * pivot_cell;
                    }
                }
            }
        }
    }
    (0..n).map(|i| if a[i][i].abs() < 1e-12 { 0.0 } else { a[i][n] / a[i][i] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).unwrap() + Duration::hours(hours)
    }

    fn journey(keys: &[u8]) -> Vec<Touchpoint<u8>> {
        keys.iter().enumerate().map(|(i, &key)| Touchpoint { key, at: at(i as i64) }).collect()
    }

    fn shares(model: AttributionModel, keys: &[u8]) -> Vec<(u8, String)> {
        attribute(model, &journey(keys), at(100), &AttributionParams::default(), None)
            .credits
            .into_iter()
            .map(|c| (c.key, c.share.to_string()))
            .collect()
    }

    #[test]
    fn rule_based_models() {
        use AttributionModel::*;
        assert_eq!(shares(FirstClick, &[1, 2, 3]), vec![(1, "1".into())]);
        assert_eq!(shares(LastClick, &[1, 2, 3]), vec![(3, "1".into())]);
        assert_eq!(
            shares(Linear, &[1, 2, 3]),
            vec![(1, "0.333333".into()), (2, "0.333333".into()), (3, "0.333334".into())]
        );
        assert_eq!(
            shares(PositionBased, &[1, 2, 3, 4]),
            vec![(1, "0.4".into()), (2, "0.1".into()), (3, "0.1".into()), (4, "0.4".into())]
        );
        assert_eq!(shares(PositionBased, &[1, 2]), vec![(1, "0.5".into()), (2, "0.5".into())]);
        assert_eq!(shares(PositionBased, &[7]), vec![(7, "1".into())]);
        assert_eq!(shares(Linear, &[1, 2, 1]), vec![(1, "0.666667".into()), (2, "0.333333".into())]);
    }

    #[test]
    fn data_driven_falls_back_with_a_reason() {
        let outcome = attribute(
            AttributionModel::DataDriven,
            &journey(&[1, 2]),
            at(10),
            &AttributionParams::default(),
            None,
        );
        assert_eq!(outcome.model_used, AttributionModel::LastClick);
        assert!(outcome.fallback_reason.is_some());
    }

    #[test]
    fn markov_worked_example() {
        let ga = "GA".to_string();
        let mailing = "mailing".to_string();
        let journeys = vec![
            (vec![ga.clone()], true),
            (vec![ga.clone()], true),
            (vec![mailing.clone()], true),
            (vec![ga.clone(), mailing.clone()], true),
            (vec![ga.clone()], false),
        ];
        let model = MarkovModel::train(&journeys, 1);
        let credit: BTreeMap<String, f64> = model.total_credit(4.0).into_iter().collect();
        assert!((credit["GA"] - 2.4).abs() < 1e-9, "{credit:?}");
        assert!((credit["mailing"] - 1.6).abs() < 1e-9, "{credit:?}");
        let outcome = attribute(
            AttributionModel::DataDriven,
            &[Touchpoint { key: ga.clone(), at: at(0) }, Touchpoint { key: mailing.clone(), at: at(1) }],
            at(2),
            &AttributionParams::default(),
            Some(&model),
        );
        assert_eq!(outcome.model_used, AttributionModel::DataDriven);
        let shares: Vec<String> = outcome.credits.iter().map(|c| c.share.to_string()).collect();
        assert_eq!(shares, vec!["0.6", "0.4"]);
    }

    fn arbitrary_journey() -> impl Strategy<Value = Vec<Touchpoint<u8>>> {
        proptest::collection::vec((0u8..6, 0i64..2000), 1..20)
            .prop_map(|touches| touches.into_iter().map(|(key, h)| Touchpoint { key, at: at(h) }).collect())
    }

    proptest! {
        #[test]
        fn shares_sum_to_exactly_one(journey in arbitrary_journey(), model in 0usize..6) {
            let model = AttributionModel::ALL[model];
            let trained = MarkovModel::train(&[(vec![0, 1, 2], true), (vec![3, 4, 5], false), (vec![1, 5], true)], 1);
            let outcome = attribute(model, &journey, at(2001), &AttributionParams::default(), Some(&trained));
            let total: Decimal = outcome.credits.iter().map(|c| c.share).sum();
            prop_assert_eq!(total, Decimal::ONE);
            for credit in &outcome.credits {
                prop_assert!(credit.share >= Decimal::ZERO && credit.share <= Decimal::ONE);
                prop_assert!(credit.share.scale() <= SHARE_SCALE);
                prop_assert!(journey.iter().any(|t| t.key == credit.key));
            }
            let again = attribute(model, &journey, at(2001), &AttributionParams::default(), Some(&trained));
            prop_assert_eq!(outcome, again);
        }

        #[test]
        fn time_decay_favours_later_touches(gap in 1i64..500) {
            let journey = vec![Touchpoint { key: 1u8, at: at(0) }, Touchpoint { key: 2u8, at: at(gap) }];
            let outcome = attribute(AttributionModel::TimeDecay, &journey, at(gap + 1), &AttributionParams::default(), None);
            prop_assert!(outcome.credits[1].share >= outcome.credits[0].share);
        }
    }
}
