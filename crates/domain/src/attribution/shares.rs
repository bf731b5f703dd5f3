//! Turning integer weights into decimal shares that sum to exactly 1 (the module doc of
//! `attribution` states the rule).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{Credit, SHARE_SCALE, Touchpoint};

/// Millionths in a whole share.
const UNITS: u128 = 10u128.pow(SHARE_SCALE);

struct Merged<'a, K> {
    key: &'a K,
    weight: u128,
    last_touch: usize,
}

/// `weights[i]` belongs to `touches[i]`; touches are in time order. Integer arithmetic
/// throughout, so the rounding is exact: weights stay below 2^54 per touch, and even a
/// journey of 2^40 touches keeps `weight * UNITS` far inside `u128`.
pub(super) fn apportion<K: Clone + Ord>(touches: &[&Touchpoint<K>], weights: &[u128]) -> Vec<Credit<K>> {
    let mut merged: Vec<Merged<'_, K>> = Vec::new();
    let mut index: BTreeMap<&K, usize> = BTreeMap::new();
    for (i, (touch, &weight)) in touches.iter().zip(weights).enumerate() {
        let slot = *index.entry(&touch.key).or_insert_with(|| {
            merged.push(Merged { key: &touch.key, weight: 0, last_touch: i });
            merged.len() - 1
        });
        merged[slot].weight += weight;
        merged[slot].last_touch = i;
    }
    let total: u128 = merged.iter().map(|m| m.weight).sum();
    if total == 0 {
        return Vec::new();
    }
    let mut units: Vec<u128> = merged.iter().map(|m| m.weight * UNITS / total).collect();
    // Each key lost less than one unit to rounding down, so fewer units are left than keys.
    let leftover = UNITS - units.iter().sum::<u128>();
    let mut by_remainder: Vec<usize> = (0..merged.len()).collect();
    by_remainder.sort_by_key(|&i| Reverse((merged[i].weight * UNITS % total, merged[i].last_touch)));
    for &i in by_remainder.iter().take(usize::try_from(leftover).unwrap_or(usize::MAX)) {
        units[i] += 1;
    }
    merged
        .iter()
        .zip(units)
        .filter(|(_, units)| *units > 0)
        .map(|(m, units)| Credit { key: m.key.clone(), share: share(units) })
        .collect()
}

fn share(units: u128) -> Decimal {
    // At most UNITS, so the conversion cannot fail.
    Decimal::new(i64::try_from(units).unwrap_or(0), SHARE_SCALE).normalize()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn shares(keys: &[u8], weights: &[u128]) -> Vec<(u8, String)> {
        let touches: Vec<Touchpoint<u8>> =
            keys.iter().map(|&key| Touchpoint { key, at: Utc.timestamp_opt(0, 0).unwrap() }).collect();
        let refs: Vec<&Touchpoint<u8>> = touches.iter().collect();
        apportion(&refs, weights).into_iter().map(|c| (c.key, c.share.to_string())).collect()
    }

    #[test]
    fn leftover_millionths_go_to_the_largest_remainders_then_the_later_key() {
        // Thirds: equal remainders, so the one leftover millionth goes to the last key.
        assert_eq!(
            shares(&[1, 2, 3], &[1, 1, 1]),
            vec![(1, "0.333333".into()), (2, "0.333333".into()), (3, "0.333334".into())]
        );
        // 1/7 = 0.142857|14..., 2/7 = 0.285714|28..., 4/7 = 0.571428|57...: the largest
        // remainder wins the millionth, wherever it sits.
        assert_eq!(
            shares(&[1, 2, 3], &[4, 1, 2]),
            vec![(1, "0.571429".into()), (2, "0.142857".into()), (3, "0.285714".into())]
        );
        // A later touch of key 1 makes it the later key in the tie.
        assert_eq!(
            shares(&[1, 2, 3, 1], &[1, 1, 1, 0]),
            vec![(1, "0.333334".into()), (2, "0.333333".into()), (3, "0.333333".into())]
        );
    }

    #[test]
    fn keys_without_a_millionth_get_no_credit() {
        assert_eq!(shares(&[1, 2], &[1, 0]), vec![(1, "1".into())]);
        assert_eq!(shares(&[1, 2], &[10_000_000, 1]), vec![(1, "1".into())]);
        assert!(shares(&[1, 2], &[0, 0]).is_empty());
        assert!(shares(&[], &[]).is_empty());
    }
}
