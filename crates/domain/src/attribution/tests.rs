use std::collections::BTreeSet;

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use AttributionModel::*;

fn at(hours: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000, 0).unwrap() + Duration::hours(hours)
}

fn journey(keys: &[u8]) -> Vec<Touchpoint<u8>> {
    keys.iter().enumerate().map(|(i, &key)| Touchpoint { key, at: at(i as i64) }).collect()
}

fn run(
    model: AttributionModel,
    journey: &[Touchpoint<u8>],
    trained: Option<&MarkovModel<u8>>,
) -> Attribution<u8> {
    attribute(model, journey, at(100), &AttributionParams::default(), trained)
}

fn shares(outcome: &Attribution<u8>) -> Vec<(u8, String)> {
    outcome.credits.iter().map(|c| (c.key, c.share.to_string())).collect()
}

fn pairs(expected: &[(u8, &str)]) -> Vec<(u8, String)> {
    expected.iter().map(|&(k, s)| (k, s.to_owned())).collect()
}

#[test]
fn names_round_trip_and_unknown_ones_are_refused() {
    for model in AttributionModel::ALL {
        assert_eq!(AttributionModel::parse(model.as_str()), Ok(model));
    }
    assert_eq!(AttributionModel::parse("last_click").unwrap_err().field(), "attributionModel");
    assert_eq!(AttributionModel::default(), LastClick);
}

#[test]
fn rule_based_models() {
    let shares_of = |model, keys: &[u8]| shares(&run(model, &journey(keys), None));
    assert_eq!(shares_of(FirstClick, &[1, 2, 3]), pairs(&[(1, "1")]));
    assert_eq!(shares_of(LastClick, &[1, 2, 3]), pairs(&[(3, "1")]));
    assert_eq!(shares_of(Linear, &[1, 2, 3]), pairs(&[(1, "0.333333"), (2, "0.333333"), (3, "0.333334")]));
    assert_eq!(shares_of(Linear, &[1, 2, 1]), pairs(&[(1, "0.666667"), (2, "0.333333")]));
    assert_eq!(
        shares_of(PositionBased, &[1, 2, 3, 4]),
        pairs(&[(1, "0.4"), (2, "0.1"), (3, "0.1"), (4, "0.4")])
    );
    assert_eq!(shares_of(PositionBased, &[1, 2, 1]), pairs(&[(1, "0.8"), (2, "0.2")]));
    assert_eq!(shares_of(PositionBased, &[1, 2]), pairs(&[(1, "0.5"), (2, "0.5")]));
    assert_eq!(shares_of(PositionBased, &[7]), pairs(&[(7, "1")]));
    for model in AttributionModel::ALL {
        let outcome = run(model, &[], None);
        assert!(outcome.credits.is_empty() && outcome.fallback_reason.is_none());
    }
}

#[test]
fn time_decay_halves_per_half_life() {
    let params = AttributionParams { time_decay_half_life: Duration::hours(1) };
    let outcome = attribute(TimeDecay, &journey(&[1, 2, 3]), at(2), &params, None);
    // Weights 1/4, 1/2, 1 of 7/4.
    assert_eq!(shares(&outcome), pairs(&[(1, "0.142857"), (2, "0.285714"), (3, "0.571429")]));
    // Long ago, or with touches after the conversion, the shares still add up.
    let ancient = attribute(TimeDecay, &journey(&[1, 2, 3]), at(1_000_000), &params, None);
    assert_eq!(shares(&ancient), shares(&outcome));
    let early = attribute(TimeDecay, &journey(&[1, 2, 3]), at(0), &params, None);
    assert_eq!(shares(&early), pairs(&[(1, "0.333333"), (2, "0.333333"), (3, "0.333334")]));
}

#[test]
fn unsorted_journeys_are_sorted_and_ties_keep_their_order() {
    let unsorted = vec![Touchpoint { key: 2, at: at(5) }, Touchpoint { key: 1, at: at(1) }];
    assert_eq!(shares(&run(FirstClick, &unsorted, None)), pairs(&[(1, "1")]));
    assert_eq!(shares(&run(Linear, &unsorted, None)), pairs(&[(1, "0.5"), (2, "0.5")]));
    let tied = vec![Touchpoint { key: 9, at: at(1) }, Touchpoint { key: 4, at: at(1) }];
    assert_eq!(shares(&run(FirstClick, &tied, None)), pairs(&[(9, "1")]));
    assert_eq!(shares(&run(LastClick, &tied, None)), pairs(&[(4, "1")]));
}

#[test]
fn data_driven_shares_removal_effects() {
    // GA = 0, mailing = 1 in the published example: removal effects 0.75 and 0.5.
    let model = MarkovModel::train(
        &[(vec![0], true), (vec![0], true), (vec![1], true), (vec![0, 1], true), (vec![0], false)],
        1,
    );
    let outcome = run(DataDriven, &journey(&[0, 1, 0]), Some(&model));
    assert_eq!((outcome.model_used, outcome.fallback_reason.as_deref()), (DataDriven, None));
    assert_eq!(shares(&outcome), pairs(&[(0, "0.6"), (1, "0.4")]));
    // A channel the model never saw gets nothing; the others share everything.
    assert_eq!(shares(&run(DataDriven, &journey(&[7, 1]), Some(&model))), pairs(&[(1, "1")]));
}

#[test]
fn data_driven_falls_back_to_last_click_and_says_why() {
    let trained = |journeys: &[(Vec<u8>, bool)], min| MarkovModel::train(journeys, min);
    let cases = [
        (None, "no data-driven model has been trained yet"),
        (Some(trained(&[(vec![1], true)], 2)), "too little data: 1 journeys, 2 needed"),
        (Some(trained(&[(vec![1], false)], 1)), "no conversions in the training data"),
        (
            Some(trained(&[(vec![5], true)], 1)),
            "the journey's channels have no removal effect in the trained model",
        ),
    ];
    for (model, reason) in cases {
        let outcome = run(DataDriven, &journey(&[1, 2]), model.as_ref());
        assert_eq!(outcome.model_used, LastClick);
        assert_eq!(outcome.fallback_reason.as_deref(), Some(reason));
        assert_eq!(shares(&outcome), pairs(&[(2, "1")]));
    }
}

fn arbitrary_journey() -> impl Strategy<Value = Vec<Touchpoint<u8>>> {
    proptest::collection::vec((0u8..6, 0i64..2000), 1..20)
        .prop_map(|touches| touches.into_iter().map(|(key, h)| Touchpoint { key, at: at(h) }).collect())
}

fn arbitrary_model() -> impl Strategy<Value = Option<MarkovModel<u8>>> {
    let journeys = proptest::collection::vec((proptest::collection::vec(0u8..6, 1..5), any::<bool>()), 0..30);
    proptest::option::weighted(0.9, (journeys, 0usize..10).prop_map(|(j, min)| MarkovModel::train(&j, min)))
}

/// The keys a model gives weight to: all for the spreading models, the ends for the
/// single-touch ones, and for DATA_DRIVEN those with a removal effect.
fn weighted_keys(
    outcome: &Attribution<u8>,
    journey: &[Touchpoint<u8>],
    trained: Option<&MarkovModel<u8>>,
) -> BTreeSet<u8> {
    let mut sorted = journey.to_vec();
    sorted.sort_by_key(|t| t.at);
    match outcome.model_used {
        FirstClick => BTreeSet::from([sorted[0].key]),
        LastClick => BTreeSet::from([sorted[sorted.len() - 1].key]),
        DataDriven => {
            let model = trained.unwrap();
            sorted.iter().map(|t| t.key).filter(|k| model.removal_effect(k).unwrap_or(0.0) > 0.0).collect()
        }
        Linear | TimeDecay | PositionBased => sorted.iter().map(|t| t.key).collect(),
    }
}

proptest! {
    #[test]
    fn every_model_shares_exactly_one_among_the_journeys_keys(
        journey in arbitrary_journey(),
        model in proptest::sample::select(AttributionModel::ALL.to_vec()),
        trained in arbitrary_model(),
        converted in 0i64..3000,
    ) {
        let params = AttributionParams::default();
        let outcome = attribute(model, &journey, at(converted), &params, trained.as_ref());
        prop_assert_eq!(outcome.credits.iter().map(|c| c.share).sum::<Decimal>(), Decimal::ONE);
        for credit in &outcome.credits {
            prop_assert!(credit.share > Decimal::ZERO && credit.share <= Decimal::ONE);
            prop_assert!(credit.share.scale() <= SHARE_SCALE);
        }
        let keys: Vec<u8> = outcome.credits.iter().map(|c| c.key).collect();
        prop_assert_eq!(keys.iter().copied().collect::<BTreeSet<u8>>(), weighted_keys(&outcome, &journey, trained.as_ref()));
        prop_assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len(), "each key credited once");
        prop_assert_eq!(outcome.model_used == model, outcome.fallback_reason.is_none());
        prop_assert_eq!(&attribute(model, &journey, at(converted), &params, trained.as_ref()), &outcome);
    }

    #[test]
    fn input_order_does_not_matter_when_times_differ(
        hours in proptest::collection::btree_set(0i64..2000, 1..15),
        keys in proptest::collection::vec(0u8..6, 15),
        model in proptest::sample::select(AttributionModel::ALL.to_vec()),
        trained in arbitrary_model(),
    ) {
        let journey: Vec<Touchpoint<u8>> = hours.iter().zip(&keys).map(|(&h, &key)| Touchpoint { key, at: at(h) }).collect();
        let reversed: Vec<Touchpoint<u8>> = journey.iter().rev().copied().collect();
        let params = AttributionParams::default();
        prop_assert_eq!(
            attribute(model, &journey, at(2000), &params, trained.as_ref()),
            attribute(model, &reversed, at(2000), &params, trained.as_ref())
        );
    }

    #[test]
    fn time_decay_favours_later_touches(hours in proptest::collection::vec(0i64..2000, 1..20), half_life in 1i64..1000) {
        // One key per touch, so nothing merges; sorted by time, shares never decrease.
        let mut hours = hours;
        hours.sort();
        let journey: Vec<Touchpoint<u8>> = hours.iter().enumerate().map(|(i, &h)| Touchpoint { key: i as u8, at: at(h) }).collect();
        let params = AttributionParams { time_decay_half_life: Duration::hours(half_life) };
        let outcome = attribute(TimeDecay, &journey, at(2000), &params, None);
        let by_key: Vec<Decimal> = journey
            .iter()
            .map(|t| outcome.credits.iter().find(|c| c.key == t.key).map_or(Decimal::ZERO, |c| c.share))
            .collect();
        prop_assert!(by_key.windows(2).all(|w| w[0] <= w[1]), "{:?}", by_key);
        prop_assert!(by_key[by_key.len() - 1] > Decimal::ZERO);
    }

    #[test]
    fn position_based_is_40_20_40_for_three_or_more_keys(n in 3usize..50) {
        let keys: Vec<u8> = (0..n as u8).collect();
        let outcome = run(PositionBased, &journey(&keys), None);
        let forty = Decimal::new(4, 1);
        prop_assert_eq!(outcome.credits[0].share, forty);
        prop_assert_eq!(outcome.credits[n - 1].share, forty);
        let middle = &outcome.credits[1..n - 1];
        prop_assert_eq!(middle.iter().map(|c| c.share).sum::<Decimal>(), Decimal::new(2, 1));
        let each = Decimal::new(2, 1) / Decimal::from(n - 2);
        prop_assert!(middle.iter().all(|c| (c.share - each).abs() < Decimal::new(1, SHARE_SCALE)));
    }
}
