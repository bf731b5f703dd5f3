//! The data-driven model: a first-order Markov chain over channels with removal effects.
//!
//! States are start, one per channel, conversion and null (journey ended without one);
//! transition probabilities are the observed transition counts over all journeys, converting
//! or not. A channel's removal effect is the relative drop in the probability of reaching
//! conversion from start when every transition into the channel goes to null instead.
//!
//! Computed exactly (in `f64`), not by simulation: with `N = (I - Q)^-1` the fundamental
//! matrix over the transient states and `x = N r` the absorption probabilities into
//! conversion, removing channel `c` removes exactly the converting paths that visit `c`:
//! those happen with probability `h_c * x_c`, where `h_c = N[start][c] / N[c][c]` is the
//! probability of ever visiting `c`. So the removal effect is `h_c * x_c / x_start`, and one
//! inversion (Gauss-Jordan, partial pivoting, O(n³) for n channels) serves every channel
//! instead of one solve each. Dense matrices: fine for the hundreds of affiliates a tenant's
//! journeys touch, retrained in the background, never per conversion.

use std::collections::{BTreeMap, BTreeSet};

const NOISE_FLOOR: f64 = 1e-12;

/// Journeys needed before the data-driven model is trusted.
pub const MIN_JOURNEYS: usize = 100;

#[derive(Debug, Clone)]
pub struct MarkovModel<K> {
    /// Sorted, so lookups are binary searches.
    channels: Vec<K>,
    removal_effects: Vec<f64>,
    conversions: usize,
    /// Journeys (converting or not, with at least one touch) it was trained on.
    pub trained_on: usize,
    min_journeys: usize,
}

impl<K: Clone + Ord> MarkovModel<K> {
    /// Trains on `(channels in time order, converted)` journeys. Journeys without a touch are
    /// skipped: they say nothing about channels.
    pub fn train(journeys: &[(Vec<K>, bool)], min_journeys: usize) -> MarkovModel<K> {
        let channels: Vec<K> = journeys
            .iter()
            .flat_map(|(path, _)| path)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        let chain = Chain::count(&channels, journeys);
        MarkovModel::solve(channels, &chain, min_journeys)
    }

    fn solve(channels: Vec<K>, chain: &Chain, min_journeys: usize) -> MarkovModel<K> {
        let removal_effects = chain.removal_effects().unwrap_or_else(|| vec![0.0; channels.len()]);
        MarkovModel {
            channels,
            removal_effects,
            conversions: chain.conversions,
            trained_on: chain.journeys,
            min_journeys,
        }
    }

    pub fn is_usable(&self) -> bool {
        self.unusable_reason().is_none()
    }

    /// Why attribution cannot rely on this model, if it cannot.
    pub fn unusable_reason(&self) -> Option<String> {
        if self.trained_on < self.min_journeys {
            Some(format!("too little data: {} journeys, {} needed", self.trained_on, self.min_journeys))
        } else if self.conversions == 0 {
            Some("no conversions in the training data".to_owned())
        } else {
            None
        }
    }

    pub fn conversions(&self) -> usize {
        self.conversions
    }

    pub fn min_journeys(&self) -> usize {
        self.min_journeys
    }

    /// Between 0 and 1; `None` for a channel absent from the training data.
    pub fn removal_effect(&self, key: &K) -> Option<f64> {
        self.channels.binary_search(key).ok().map(|i| self.removal_effects[i])
    }

    /// Every channel seen in training, in key order.
    pub fn removal_effects(&self) -> impl Iterator<Item = (&K, f64)> {
        self.channels.iter().zip(self.removal_effects.iter().copied())
    }

    /// Each channel's share of `total_conversions`, proportional to its removal effect.
    pub fn total_credit(&self, total_conversions: f64) -> Vec<(K, f64)> {
        let sum: f64 = self.removal_effects.iter().sum();
        self.removal_effects()
            .map(|(k, effect)| (k.clone(), if sum > 0.0 { effect / sum * total_conversions } else { 0.0 }))
            .collect()
    }
}

/// Trains a [`MarkovModel`] one journey at a time, in any order, keeping only the transition
/// counts (at most one per pair of channels that follow one another), never the journeys: so
/// training over any number of journeys, read a page at a time, needs memory for the channels
/// only, and gives exactly the model [`MarkovModel::train`] gives on the same journeys.
#[derive(Debug, Clone)]
pub struct MarkovTrainer<K> {
    /// `(from, to)`: `from` `None` is the start state.
    transitions: BTreeMap<(Option<K>, K), f64>,
    to_conversion: BTreeMap<Option<K>, f64>,
    to_null: BTreeMap<Option<K>, f64>,
    journeys: usize,
    conversions: usize,
}

impl<K: Clone + Ord> Default for MarkovTrainer<K> {
    fn default() -> Self {
        MarkovTrainer {
            transitions: BTreeMap::new(),
            to_conversion: BTreeMap::new(),
            to_null: BTreeMap::new(),
            journeys: 0,
            conversions: 0,
        }
    }
}

impl<K: Clone + Ord> MarkovTrainer<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// One journey: its channels in time order, and whether it converted. A journey without
    /// a touch is skipped, as [`MarkovModel::train`] skips it.
    pub fn add(&mut self, path: &[K], converted: bool) {
        if path.is_empty() {
            return;
        }
        let mut from: Option<&K> = None;
        for key in path {
            // A repeat of the same channel is a self-loop, left out as `Chain::count` does.
            if from != Some(key) {
                *self.transitions.entry((from.cloned(), key.clone())).or_default() += 1.0;
                from = Some(key);
            }
        }
        let absorbed = if converted { &mut self.to_conversion } else { &mut self.to_null };
        *absorbed.entry(from.cloned()).or_default() += 1.0;
        self.journeys += 1;
        self.conversions += usize::from(converted);
    }

    /// Journeys added so far (with at least one touch).
    pub fn journeys(&self) -> usize {
        self.journeys
    }

    pub fn finish(self, min_journeys: usize) -> MarkovModel<K> {
        let channels: Vec<K> =
            self.transitions.keys().map(|(_, to)| to).collect::<BTreeSet<_>>().into_iter().cloned().collect();
        let size = channels.len() + 1;
        // Every key counted is a channel: each one is the target of some transition.
        let state = |key: &Option<K>| match key {
            None => 0,
            Some(key) => channels.binary_search(key).map_or(0, |i| i + 1),
        };
        let mut chain = Chain {
            transient: vec![vec![0.0; size]; size],
            to_conversion: vec![0.0; size],
            to_null: vec![0.0; size],
            journeys: self.journeys,
            conversions: self.conversions,
        };
        for ((from, to), count) in &self.transitions {
            let to = channels.binary_search(to).map_or(0, |i| i + 1);
            chain.transient[state(from)][to] = *count;
        }
        for (from, count) in &self.to_conversion {
            chain.to_conversion[state(from)] = *count;
        }
        for (from, count) in &self.to_null {
            chain.to_null[state(from)] = *count;
        }
        MarkovModel::solve(channels, &chain, min_journeys)
    }
}

/// Transition counts. Transient states: 0 is start, `1..=n` the channels; `to_conversion`
/// and `to_null` count the absorbing transitions out of each transient state.
struct Chain {
    transient: Vec<Vec<f64>>,
    to_conversion: Vec<f64>,
    to_null: Vec<f64>,
    journeys: usize,
    conversions: usize,
}

impl Chain {
    fn count<K: Ord>(channels: &[K], journeys: &[(Vec<K>, bool)]) -> Chain {
        let size = channels.len() + 1;
        let mut chain = Chain {
            transient: vec![vec![0.0; size]; size],
            to_conversion: vec![0.0; size],
            to_null: vec![0.0; size],
            journeys: 0,
            conversions: 0,
        };
        for (path, converted) in journeys.iter().filter(|(path, _)| !path.is_empty()) {
            let mut from = 0;
            for state in path.iter().filter_map(|key| channels.binary_search(key).ok().map(|i| i + 1)) {
                // A repeat of the same channel is a self-loop, which changes neither
                // absorption nor visiting probabilities; leaving it out keeps pivots at 1.
                if state != from {
                    chain.transient[from][state] += 1.0;
                    from = state;
                }
            }
            let absorbed = if *converted { &mut chain.to_conversion } else { &mut chain.to_null };
            absorbed[from] += 1.0;
            chain.journeys += 1;
            chain.conversions += usize::from(*converted);
        }
        chain
    }

    /// `None` if the system is singular, which observed journeys cannot produce: every state
    /// they reach has a way out to an absorbing state.
    fn removal_effects(&self) -> Option<Vec<f64>> {
        let size = self.transient.len();
        let mut system = vec![0.0; size * size]; // I - Q, row-major
        let mut rates = vec![0.0; size]; // r: one-step probability of converting
        for (s, row) in self.transient.iter().enumerate() {
            system[s * size + s] = 1.0;
            let total: f64 = row.iter().sum::<f64>() + self.to_conversion[s] + self.to_null[s];
            if total == 0.0 {
                continue; // never left (start with no journeys): converts with probability 0
            }
            for (t, &count) in row.iter().enumerate() {
                system[s * size + t] -= count / total;
            }
            rates[s] = self.to_conversion[s] / total;
        }
        let fundamental = invert(system, size)?;
        let at = |row: usize, col: usize| fundamental[row * size + col];
        let converts: Vec<f64> = (0..size).map(|s| (0..size).map(|t| at(s, t) * rates[t]).sum()).collect();
        if converts[0].is_nan() || converts[0] <= NOISE_FLOOR {
            return Some(vec![0.0; size - 1]);
        }
        let effects = (1..size)
            .map(|c| {
                let effect = at(0, c) / at(c, c) * converts[c] / converts[0];
                // Below the noise floor it is rounding error, and an effect of zero must stay
                // zero: it decides whether a channel is credited at all.
                if effect.is_finite() && effect > NOISE_FLOOR { effect.min(1.0) } else { 0.0 }
            })
            .collect();
        Some(effects)
    }
}

/// Inverts the row-major `size`×`size` matrix by Gauss-Jordan elimination with partial
/// pivoting.
fn invert(mut a: Vec<f64>, size: usize) -> Option<Vec<f64>> {
    let mut inverse = vec![0.0; size * size];
    for i in 0..size {
        inverse[i * size + i] = 1.0;
    }
    let mut pivot_row = vec![0.0; 2 * size];
    for col in 0..size {
        let pivot =
            (col..size).max_by(|&x, &y| a[x * size + col].abs().total_cmp(&a[y * size + col].abs()))?;
        let p = a[pivot * size + col];
        if p == 0.0 || !p.is_finite() {
            return None;
        }
        for k in 0..size {
            a.swap(pivot * size + k, col * size + k);
            inverse.swap(pivot * size + k, col * size + k);
        }
        for k in 0..size {
            a[col * size + k] /= p;
            inverse[col * size + k] /= p;
        }
        pivot_row[..size].copy_from_slice(&a[col * size..(col + 1) * size]);
        pivot_row[size..].copy_from_slice(&inverse[col * size..(col + 1) * size]);
        for row in (0..size).filter(|&row| row != col) {
            let factor = a[row * size + col];
            // The chain is sparse: most affiliates never follow one another.
            if factor == 0.0 {
                continue;
            }
            for k in 0..size {
                a[row * size + k] -= factor * pivot_row[k];
                inverse[row * size + k] -= factor * pivot_row[size + k];
            }
        }
    }
    Some(inverse)
}

#[cfg(test)]
mod tests;
